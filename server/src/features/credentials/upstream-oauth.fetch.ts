import type { OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { CredentialOwner } from './credentials.repository.ts';
import { REFRESH_LOCK_MS, refreshLockName, type UpstreamOAuthRefreshDeps } from './upstream-oauth.refresh.ts';
import type { StoredTokens } from './upstream-oauth.store.ts';

/**
 * A token request for the refresh-token grant. The SDK sends token requests with a
 * URLSearchParams body; MCP messages have string bodies, so they pass this check without
 * being parsed (it runs on every upstream request of an OAuth server).
 */
export function isRefreshGrant(init: RequestInit | undefined): boolean {
  return init?.body instanceof URLSearchParams && init.body.get('grant_type') === 'refresh_token';
}

/** What the refresh-lock fetch needs: a part of what refreshing needs. */
export type LockedRefreshFetchDeps = Pick<
  UpstreamOAuthRefreshDeps,
  'repo' | 'store' | 'audit' | 'lock' | 'serverById' | 'onRefresh'
>;

/**
 * Sends the refresh-token grants the SDK builds by itself (after a 401) under the same
 * lock as every other refresh of that token; see VaultOAuthProvider.serializedRefreshFetch.
 */
export class LockedRefreshFetch {
  readonly #d: LockedRefreshFetchDeps;

  constructor(deps: LockedRefreshFetchDeps) {
    this.#d = deps;
  }

  /**
   * Sends a refresh-token grant the SDK built (after a 401) under the token's
   * refresh lock, waiting for the lock when another refresh holds it. Inside, the request
   * carries the newest stored refresh token (another refresh may have rotated it since the
   * SDK read it), and a successful answer is stored before the lock is released.
   */
  async send(
    owner: CredentialOwner,
    base: typeof fetch,
    input: string | URL | Request,
    init: RequestInit,
  ): Promise<Response> {
    const first = await this.#d.repo.find(owner);
    if (!first) return base(input, init);
    const deadline = Date.now() + REFRESH_LOCK_MS;
    for (;;) {
      const attempt = await this.#d.lock.run(refreshLockName(first.id), REFRESH_LOCK_MS, async () => {
        const row = await this.#d.repo.findById(first.id);
        const stored = row?.status === 'ok' ? this.#d.store.openTokens(row) : undefined;
        const body = new URLSearchParams(String(init.body));
        if (stored?.tokens.refresh_token) body.set('refresh_token', stored.tokens.refresh_token);
        const res = await base(input, { ...init, body });
        if (row && stored && res.ok) {
          const tokens = (await res
            .clone()
            .json()
            .catch(() => undefined)) as OAuthTokens | undefined;
          if (tokens?.access_token) {
            const next: StoredTokens = {
              tokens: { ...tokens, issuer: stored.tokens.issuer },
              obtainedAt: Date.now(),
            };
            await this.#d.repo.replaceIfUnchanged(
              row.id,
              row.ciphertext,
              this.#d.store.sealTokens(row, next),
            );
            this.#d.audit.record({
              category: 'credential',
              action: 'credential.refresh',
              status: 'ok',
              userId: row.userId,
              serverSlug: (await this.#d.serverById(row.serverId))?.slug ?? null,
              threadId: row.threadId || null,
              credentialScope: row.threadId ? 'thread' : 'user',
              details: { trigger: 'after_401' },
            });
          }
        }
        this.#d.onRefresh?.(res.ok ? 'ok' : 'failed');
        return res;
      });
      if (attempt.ran) return attempt.value;
      if (Date.now() > deadline) return base(input, init);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
