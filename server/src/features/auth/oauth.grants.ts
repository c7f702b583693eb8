import type { ChangeFeed } from '../../platform/redis/changes.ts';
import type { AuthRepository } from './auth.repository.ts';

/** How long a grant found alive is believed without asking the database (a lost change message heals within it). */
const LIVE_TTL_MS = 10_000;
/** Grants remembered; past this the oldest are forgotten (and looked up again when next seen). */
const MAX_ENTRIES = 10_000;

/**
 * Whether the grant behind an OAuth access token still stands. Access tokens are
 * self-contained JWTs (valid for OAUTH_ACCESS_TOKEN_TTL_SECONDS), so revoking a grant in the
 * store alone left its tokens working until they expired. Every MCP request asks here, so
 * the answer comes from memory: a revoked grant is remembered as such for good (grant ids
 * are never reused); a live one for LIVE_TTL_MS, then read again. A revocation in this
 * process applies at once; in the others through the change feed (topic `oauth-grants`),
 * which makes them forget every grant they believed alive.
 */
export class OAuthGrantStatus {
  readonly #repo: AuthRepository;
  readonly #changes: ChangeFeed;
  readonly #known = new Map<string, { live: boolean; at: number }>();
  /** Bumped by every revocation heard of: a lookup that began before one does not store its answer. */
  #generation = 0;

  readonly #onRevoked: (() => void) | undefined;

  constructor(deps: {
    repo: AuthRepository;
    changes: ChangeFeed;
    /** Called after a revocation here or in another process (open sessions are re-checked). */
    onRevoked?: () => void;
  }) {
    this.#repo = deps.repo;
    this.#changes = deps.changes;
    this.#onRevoked = deps.onRevoked;
    deps.changes.subscribe('oauth-grants', () => {
      this.#forgetLive();
      this.#onRevoked?.();
    });
  }

  /** True while the grant exists and has not expired. */
  async isLive(grantId: string): Promise<boolean> {
    const known = this.#known.get(grantId);
    if (known && (!known.live || Date.now() - known.at < LIVE_TTL_MS)) return known.live;
    const generation = this.#generation;
    const at = Date.now();
    const row = await this.#repo.oauthFind(`Grant:${grantId}`);
    const live = Boolean(row && (!row.expiresAt || row.expiresAt.getTime() > Date.now()));
    if (generation === this.#generation || !live) this.#remember(grantId, { live, at });
    return live;
  }

  /** A grant was revoked (its store rows are gone): refuse its tokens here now, and tell the other processes. */
  revoked(grantId: string): void {
    this.#generation++;
    this.#remember(grantId, { live: false, at: Date.now() });
    this.#changes.publish('oauth-grants');
    this.#onRevoked?.();
  }

  #forgetLive() {
    this.#generation++;
    for (const [id, entry] of this.#known) if (entry.live) this.#known.delete(id);
  }

  #remember(grantId: string, entry: { live: boolean; at: number }) {
    this.#known.delete(grantId);
    this.#known.set(grantId, entry);
    if (this.#known.size > MAX_ENTRIES) this.#known.delete(this.#known.keys().next().value!);
  }
}
