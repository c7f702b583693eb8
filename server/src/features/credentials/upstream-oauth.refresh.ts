import { discoverOAuthServerInfo, refreshAuthorization } from '@modelcontextprotocol/sdk/client/auth.js';
import {
  InvalidClientError,
  InvalidGrantError,
  UnauthorizedClientError,
} from '@modelcontextprotocol/sdk/server/auth/errors.js';
import {
  checkResourceAllowed,
  resourceUrlFromServerUrl,
} from '@modelcontextprotocol/sdk/shared/auth-utils.js';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditSink } from '../audit/index.ts';
import type { RefreshLock } from './credentials.lock.ts';
import type { CredentialOwner, CredentialRow, CredentialsRepository } from './credentials.repository.ts';
import {
  expiresAtOf,
  type OAuthTarget,
  type StoredTokens,
  type TokenEntry,
  type UpstreamOAuthStore,
} from './upstream-oauth.store.ts';

/** A refresh's outcome, as metrics count it. */
export type RefreshOutcome = 'ok' | 'failed' | 'invalid_grant' | 'skipped';

/** A lease on one token's refresh; longer than the discovery and token requests can take. */
export const REFRESH_LOCK_MS = 30_000;
/** The lock every refresh of one stored token takes (the job's, on demand, and after a 401). */
export const refreshLockName = (credentialId: string) => `oauth-refresh:${credentialId}`;
/** Refresh records per job run. */
const REFRESH_BATCH = 500;

/** Authorization server identifiers compare as URLs, tolerating one trailing slash (as the SDK does). */
function sameIssuer(a: string, b: string): boolean {
  const norm = (v: string) => {
    try {
      return new URL(v).href.replace(/\/$/, '');
    } catch {
      return v.replace(/\/$/, '');
    }
  };
  return norm(a) === norm(b);
}

/** A message safe to show and record: one line, capped, no query strings (they may hold codes). */
export function safeMessage(err: unknown): string {
  const m = (err as Error)?.message || String(err) || 'unknown error';
  return (
    m
      .split('\n')[0]!
      .replace(/\b(https?:\/\/[^\s?#]+)[?#]\S*/gi, '$1?…')
      .slice(0, 300) || 'unknown error'
  );
}

/** What refreshing needs; UpstreamOAuthService passes its own dependencies on. */
export interface UpstreamOAuthRefreshDeps {
  repo: CredentialsRepository;
  store: UpstreamOAuthStore;
  audit: AuditSink;
  logger: Logger;
  /** One refresh per token: Redis with REDIS_URL, in-process otherwise. */
  lock: RefreshLock;
  /** SSRF-guarded fetch (discovery and token requests go to URLs the upstream names). */
  fetch: typeof fetch;
  /** A registered server by id (a stored token knows only its server's id). */
  serverById: (id: string) => Promise<OAuthTarget | undefined>;
  /** Tokens expiring within this many seconds are refreshed by the job. */
  refreshMarginSeconds: number;
  /** Called once per refresh attempt (metrics). */
  onRefresh?: ((outcome: RefreshOutcome) => void) | undefined;
}

/**
 * Refreshes stored upstream tokens before they expire: every due token for the
 * `credentials.refresh` job, and one token on demand for a connection about to use it.
 * Each refresh runs under the token's lock, so one refresh token is never presented twice.
 */
export class UpstreamOAuthRefresher {
  readonly #d: UpstreamOAuthRefreshDeps;

  constructor(deps: UpstreamOAuthRefreshDeps) {
    this.#d = deps;
  }

  /**
   * Refreshes every token in good standing that expires within the margin, one at a time,
   * each under its lock (a token another process is refreshing is skipped). Never throws
   * for one token's failure: it is counted, audited, and retried by the next run.
   */
  async refreshDue(): Promise<Record<RefreshOutcome, number>> {
    const counts: Record<RefreshOutcome, number> = { ok: 0, failed: 0, invalid_grant: 0, skipped: 0 };
    const now = Date.now();
    const marginMs = this.#d.refreshMarginSeconds * 1000;
    const due = await this.#d.repo.listOAuthExpiring(new Date(now + marginMs), REFRESH_BATCH);
    for (const row of due) {
      const outcome = await this.#refresh(row.id, 'job', (r) => {
        const expiresAt = r.expiresAt?.getTime();
        return expiresAt !== undefined && expiresAt <= Date.now() + marginMs;
      });
      counts[outcome.outcome]++;
    }
    const purged = await this.#d.repo.deleteExpiredPending(new Date(now));
    if (due.length || purged)
      this.#d.logger.info({ ...counts, purgedPending: purged }, 'upstream OAuth refresh run');
    return counts;
  }

  /**
   * Refreshes a token that is about to expire, for a connection about to use it.
   * When another process holds the lock, waits for its result instead of refreshing again.
   */
  async refreshForUse(entry: TokenEntry): Promise<TokenEntry | undefined> {
    // Due only while the record still holds the tokens this connection saw.
    const result = await this.#refresh(
      entry.row.id,
      'on_demand',
      (r) => r.ciphertext === entry.row.ciphertext,
    );
    if (result.entry) return result.entry;
    const owner: CredentialOwner = entry.row;
    if (!result.busy) return this.#d.store.readTokens(owner);
    // Another process is refreshing this token: wait for what it stores.
    const deadline = Date.now() + REFRESH_LOCK_MS;
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      const current = await this.#d.store.readTokens(owner);
      if (!current || current.row.ciphertext !== entry.row.ciphertext || Date.now() > deadline)
        return current;
    }
  }

  /**
   * One token's refresh under its lock. Under the lock the record is read again: when it
   * is no longer due (another run refreshed it) nothing happens. Rotated refresh tokens are
   * stored by compare-and-set; `invalid_grant` marks the record `needs_consent`.
   */
  async #refresh(
    id: string,
    trigger: 'job' | 'on_demand',
    isDue: (row: CredentialRow) => boolean,
  ): Promise<{ outcome: RefreshOutcome; entry?: TokenEntry | undefined; busy?: boolean }> {
    const locked = await this.#d.lock.run(refreshLockName(id), REFRESH_LOCK_MS, async () => {
      const row = await this.#d.repo.findById(id);
      if (!row || row.status !== 'ok' || !row.userId || !isDue(row)) return { outcome: 'skipped' as const };
      return this.#refreshRow(row, trigger);
    });
    const result = locked.ran ? locked.value : { outcome: 'skipped' as const, busy: true };
    this.#d.onRefresh?.(result.outcome);
    return result;
  }

  async #refreshRow(
    row: CredentialRow,
    trigger: 'job' | 'on_demand',
  ): Promise<{ outcome: RefreshOutcome; entry?: TokenEntry | undefined }> {
    const base = {
      category: 'credential' as const,
      userId: row.userId,
      threadId: row.threadId || null,
      details: { trigger },
    };
    const target = await this.#d.serverById(row.serverId);
    if (!target?.oauth || target.resolvedTransport.type === 'stdio') return { outcome: 'skipped' };
    const serverSlug = target.slug;
    const stored = this.#d.store.openTokens(row);
    const refreshToken = stored.tokens.refresh_token;
    const needsConsent = async (reason: string) => {
      if (await this.#d.repo.markNeedsConsent(row.id, row.ciphertext)) {
        this.#d.audit.record({
          ...base,
          serverSlug,
          action: 'credential.needs_consent',
          status: 'error',
          error: reason,
        });
        this.#d.logger.info(
          { server: serverSlug, userId: row.userId, reason },
          'upstream OAuth needs consent again',
        );
      }
      return { outcome: 'invalid_grant' as const };
    };
    if (!refreshToken) {
      // Nothing to refresh with: once expired, only a new authorization helps.
      const expiresAt = expiresAtOf(stored);
      if (expiresAt !== undefined && expiresAt <= Date.now()) {
        return needsConsent('the access token expired and the authorization server gave no refresh token');
      }
      return { outcome: 'skipped' };
    }
    try {
      const serverUrl = target.resolvedTransport.url;
      const info = await discoverOAuthServerInfo(serverUrl, { fetchFn: this.#d.fetch });
      const issuer = String(info.authorizationServerUrl);
      if (stored.tokens.issuer && !sameIssuer(stored.tokens.issuer, issuer)) {
        // Never present a refresh token to another authorization server than the one that issued it.
        return await needsConsent(`the authorization server moved to ${issuer}`);
      }
      const client = await this.#d.store.readClient(target);
      if (!client) return await needsConsent('the gateway has no OAuth client at this server any more');
      const fresh = await refreshAuthorization(issuer, {
        metadata: info.authorizationServerMetadata,
        clientInformation: client,
        refreshToken,
        resource: this.#resourceOf(serverUrl, info.resourceMetadata?.resource),
        fetchFn: this.#d.fetch,
      });
      const next: StoredTokens = { tokens: { ...fresh, issuer }, obtainedAt: Date.now() };
      const updated = await this.#d.repo.replaceIfUnchanged(
        row.id,
        row.ciphertext,
        this.#d.store.sealTokens(row, next),
      );
      if (!updated) return { outcome: 'skipped' }; // replaced meanwhile (a new authorization): keep that
      this.#d.audit.record({
        ...base,
        serverSlug,
        action: 'credential.refresh',
        status: 'ok',
        credentialScope: row.threadId ? 'thread' : 'user',
      });
      return { outcome: 'ok', entry: { row: updated, stored: next, readAt: Date.now() } };
    } catch (err) {
      if (err instanceof InvalidGrantError) return needsConsent(`refresh refused: ${safeMessage(err)}`);
      if (err instanceof InvalidClientError || err instanceof UnauthorizedClientError) {
        await this.#d.store.dropDynamicClient(target);
        return needsConsent(
          `the authorization server no longer knows the gateway's client: ${safeMessage(err)}`,
        );
      }
      this.#d.audit.record({
        ...base,
        serverSlug,
        action: 'credential.refresh',
        status: 'error',
        error: safeMessage(err),
      });
      this.#d.logger.warn(
        { server: serverSlug, userId: row.userId, err: safeMessage(err) },
        'upstream OAuth refresh failed; retrying later',
      );
      return { outcome: 'failed' };
    }
  }

  /** The RFC 8707 `resource` for a refresh, chosen as the SDK's auth() chooses it. */
  #resourceOf(serverUrl: string, advertised: string | undefined): string | undefined {
    if (!advertised) return undefined;
    if (
      !checkResourceAllowed({
        requestedResource: resourceUrlFromServerUrl(serverUrl),
        configuredResource: advertised,
      })
    ) {
      throw new Error(`protected resource ${advertised} does not match ${serverUrl}`);
    }
    return advertised;
  }
}
