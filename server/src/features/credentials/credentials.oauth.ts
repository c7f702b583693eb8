import { randomBytes } from 'node:crypto';
import {
  auth,
  discoverOAuthServerInfo,
  refreshAuthorization,
  type OAuthClientProvider,
} from '@modelcontextprotocol/sdk/client/auth.js';
import {
  InvalidClientError,
  InvalidGrantError,
  UnauthorizedClientError,
} from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import {
  checkResourceAllowed,
  resourceUrlFromServerUrl,
} from '@modelcontextprotocol/sdk/shared/auth-utils.js';
import type { OAuthConnectView, TransportConfig } from '@gateway/shared';
import type { Vault } from '../../platform/crypto/vault.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditSink } from '../audit/index.ts';
import type { RefreshLock } from './credentials.lock.ts';
import type { SealedStore } from './credentials.rotation.ts';
import type {
  CredentialOwner,
  CredentialRow,
  CredentialsRepository,
  PendingAuthorizationRow,
} from './credentials.repository.ts';
import { aad } from './credentials.service.ts';

/** The vault's additional data for a pending authorization's sealed PKCE verifier. */
const pendingAad = (state: string) => `pending|${state}`;

/**
 * Pending authorizations as a sealed store for master-key rotation (their PKCE verifiers
 * are sealed; they live 10 minutes, but an old key must not be dropped under them).
 */
export function pendingAuthorizationsSealedStore(repo: CredentialsRepository): SealedStore {
  return {
    name: 'oauth_pending_authorizations',
    countByKey: (keyId) => repo.countPendingByKey(keyId),
    async listNotUnderKey(keyId, afterId, limit) {
      const rows = await repo.listPendingNotUnderKey(keyId, afterId, limit);
      return rows.map((row) => ({ id: row.state, sealed: row, aad: pendingAad(row.state) }));
    },
    replaceWrappedKey: (id, expected, next) => repo.replacePendingWrappedKey(id, expected, next),
  };
}

/** The part of a registered server upstream OAuth needs (the registry's ServerRecord has it). */
export interface OAuthTarget {
  id: string;
  slug: string;
  name: string;
  threadIsolated: boolean;
  /** Null: the server does not use OAuth. */
  oauth: { scopes: string[]; clientId?: string | undefined } | null;
  resolvedTransport: TransportConfig;
}

/** A refresh's outcome, as metrics count it. */
export type RefreshOutcome = 'ok' | 'failed' | 'invalid_grant' | 'skipped';

/** Which stored tokens a connection used: the thread's, the user's, or none. */
export type OAuthScope = 'thread' | 'user' | 'none';

/** A start or callback of an upstream authorization that cannot go on; `message` is safe to show. */
export class UpstreamOAuthError extends Error {
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.name = 'UpstreamOAuthError';
    this.status = status;
  }
}

/** Tokens as sealed: the SDK's tokens (with `issuer`, the authorization server) and when they arrived. */
interface StoredTokens {
  tokens: OAuthTokens;
  obtainedAt: number;
}

/** Stored tokens with the row they came from (for compare-and-set) and when they were read. */
interface TokenEntry {
  row: CredentialRow;
  stored: StoredTokens;
  readAt: number;
}

/** How long a pending authorization (and its connect link) stays usable. */
const PENDING_TTL_MS = 10 * 60_000;
/** A lease on one token's refresh; longer than the discovery and token requests can take. */
const REFRESH_LOCK_MS = 30_000;
/** How often a provider re-reads its tokens (another process may have refreshed them). */
const REREAD_MS = 5_000;
/** After a failed on-demand refresh, wait this long before trying again (the job retries too). */
const RETRY_AFTER_MS = 10_000;
/** Refresh records per job run. */
const REFRESH_BATCH = 500;

const expiresAtOf = (s: StoredTokens) =>
  s.tokens.expires_in !== undefined ? s.obtainedAt + s.tokens.expires_in * 1000 : undefined;

/**
 * Whether an access token is (nearly) expired: within a third of its lifetime, at most a
 * minute, of its expiry (so a short-lived token is not refreshed on every use).
 */
function nearExpiry(s: StoredTokens, now: number): boolean {
  const expiresAt = expiresAtOf(s);
  if (expiresAt === undefined) return false;
  const skew = Math.min(60_000, (expiresAt - s.obtainedAt) / 3);
  return expiresAt - skew <= now;
}

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
function safeMessage(err: unknown): string {
  const m = (err as Error)?.message || String(err) || 'unknown error';
  return (
    m
      .split('\n')[0]!
      .replace(/\b(https?:\/\/[^\s?#]+)[?#]\S*/gi, '$1?…')
      .slice(0, 300) || 'unknown error'
  );
}

function remoteUrl(target: OAuthTarget): string {
  const t = target.resolvedTransport;
  if (t.type === 'stdio') throw new UpstreamOAuthError(`server ${target.slug} is not a remote server`);
  return t.url;
}

const userOwner = (serverId: string, userId: string, threadId = ''): CredentialOwner => ({
  scope: 'user',
  kind: 'oauth',
  serverId,
  userId,
  threadId,
});

const clientOwner = (serverId: string): CredentialOwner => ({
  scope: 'server',
  kind: 'oauth',
  serverId,
  userId: null,
  threadId: '',
});

export interface UpstreamOAuthDeps {
  repo: CredentialsRepository;
  vault: Vault;
  audit: AuditSink;
  logger: Logger;
  /** One refresh per token: Redis with REDIS_URL, in-process otherwise. */
  lock: RefreshLock;
  /** SSRF-guarded fetch (discovery, registration and token requests go to URLs the upstream names). */
  fetch: typeof fetch;
  /** A registered server by id (the callback and the refresh job only know the id). */
  serverById: (id: string) => Promise<OAuthTarget | undefined>;
  /** PUBLIC_URL, when known before listening; see setPublicUrl. */
  publicUrl?: string | undefined;
  /** Tokens expiring within this many seconds are refreshed by the job. */
  refreshMarginSeconds: number;
  /** Called once per refresh attempt (metrics). */
  onRefresh?: ((outcome: RefreshOutcome) => void) | undefined;
}

/**
 * The gateway as the OAuth client of upstream MCP servers that require OAuth. Each user
 * (or chat thread) connects their own upstream account; tokens are sealed in the vault and
 * refreshed before they expire by the `credentials.refresh` job (and on demand, under the
 * same lock). The OAuth protocol itself is the MCP SDK's (`auth()`, discovery, PKCE,
 * RFC 8707 `resource`, dynamic registration, `refreshAuthorization`); this service only
 * stores what the SDK hands it, through {@link VaultOAuthProvider}.
 */
export class UpstreamOAuthService {
  readonly #d: UpstreamOAuthDeps;
  readonly #logger: Logger;
  #publicUrl: string | undefined;

  constructor(deps: UpstreamOAuthDeps) {
    this.#d = deps;
    this.#logger = deps.logger.child({ feature: 'credentials', part: 'upstream-oauth' });
    this.#publicUrl = deps.publicUrl;
  }

  /** The server's public URL, known once it listens (when PUBLIC_URL is unset). */
  setPublicUrl(url: string): void {
    this.#publicUrl = url.replace(/\/+$/, '');
  }

  /** Where authorization servers send the user back: `{publicUrl}/oauth/upstream/callback`. */
  get redirectUrl(): string {
    if (!this.#publicUrl) throw new Error('the public URL is not known (set PUBLIC_URL)');
    return `${this.#publicUrl}/oauth/upstream/callback`;
  }

  /** The link to give a user for a pending authorization: it signs them in, then redirects. */
  connectUrl(state: string): string {
    if (!this.#publicUrl) throw new Error('the public URL is not known (set PUBLIC_URL)');
    return `${this.#publicUrl}/oauth/upstream/start?state=${encodeURIComponent(state)}`;
  }

  // ----- for the gateway: one provider per upstream connection -----

  /**
   * The SDK auth provider for one upstream connection of `userId` (in `threadId`): the
   * thread's tokens first, then the user's, unless the server is thread-isolated (as with
   * credential values). Records the `credential.use` audit event. An authorization the
   * SDK starts through it is for the same scope (the thread only when isolated or already
   * connected there).
   */
  async providerFor(
    target: OAuthTarget,
    context: { userId: string; threadId?: string | undefined; sessionId?: string | undefined },
  ): Promise<{ provider: VaultOAuthProvider; scope: OAuthScope }> {
    remoteUrl(target);
    let owner: CredentialOwner | undefined;
    let row: CredentialRow | undefined;
    let scope: OAuthScope = 'none';
    if (context.threadId) {
      const threadOwner = userOwner(target.id, context.userId, context.threadId);
      const threadRow = await this.#d.repo.find(threadOwner);
      if (threadRow?.status === 'ok') [owner, row, scope] = [threadOwner, threadRow, 'thread'];
      else if (target.threadIsolated) owner = threadOwner;
    }
    if (!owner) {
      owner = userOwner(target.id, context.userId);
      const userRow = await this.#d.repo.find(owner);
      if (userRow?.status === 'ok') [row, scope] = [userRow, 'user'];
    }
    this.#d.audit.record({
      category: 'credential',
      action: 'credential.use',
      status: scope === 'none' ? 'error' : 'ok',
      userId: context.userId,
      serverSlug: target.slug,
      threadId: context.threadId ?? null,
      sessionId: context.sessionId ?? null,
      credentialScope: scope,
      details: { kind: 'oauth' },
      ...(scope === 'none' ? { error: 'no OAuth connection for this server' } : {}),
    });
    const entry = row ? { row, stored: this.#openTokens(row), readAt: Date.now() } : undefined;
    return {
      provider: new VaultOAuthProvider(this, { target, owner, mode: 'use', entry, via: 'mcp' }),
      scope,
    };
  }

  // ----- for the REST API and the web pages -----

  /**
   * Starts a fresh authorization for `userId` (in `threadId`) at the server's authorization
   * server, ignoring tokens already stored (reconnecting replaces them once it completes).
   */
  async connect(target: OAuthTarget, userId: string, threadId?: string): Promise<OAuthConnectView> {
    if (!target.oauth) throw new UpstreamOAuthError(`server ${target.slug} does not use OAuth`);
    const serverUrl = remoteUrl(target);
    const provider = new VaultOAuthProvider(this, {
      target,
      owner: userOwner(target.id, userId, threadId ?? ''),
      mode: 'connect',
      via: 'api',
    });
    let result: string;
    try {
      result = await auth(provider, { serverUrl, fetchFn: this.#d.fetch });
    } catch (err) {
      this.#logger.warn({ server: target.slug, err: safeMessage(err) }, 'upstream OAuth connect failed');
      throw new UpstreamOAuthError(
        `could not start the authorization at ${target.slug}'s authorization server: ${safeMessage(err)}`,
        502,
      );
    }
    const pending = provider.pending;
    if (result !== 'REDIRECT' || !pending) {
      throw new UpstreamOAuthError(`${target.slug}'s authorization server asked for no user consent`, 502);
    }
    return { authorizationUrl: pending.authorizationUrl, expiresAt: pending.expiresAt.toISOString() };
  }

  /** A pending authorization the signed-in `userId` started: where to send them, for which server. */
  async start(state: string, userId: string): Promise<{ authorizationUrl: string; server: OAuthTarget }> {
    const pending = await this.#pendingFor(state, userId, new Date());
    const server = await this.#d.serverById(pending.serverId);
    if (!server?.oauth) throw new UpstreamOAuthError('the server no longer exists or no longer uses OAuth');
    return { authorizationUrl: pending.authorizationUrl, server };
  }

  /**
   * The authorization server sent the user back: uses up the pending authorization (once,
   * in time, only by who started it) and lets the SDK exchange the code (PKCE, `resource`),
   * which stores the tokens through the provider. Audit events for success and failure.
   */
  async callback(
    params: { state?: string | undefined; code?: string | undefined; error?: string | undefined },
    userId: string,
  ): Promise<OAuthTarget> {
    const now = new Date();
    let serverSlug: string | null = null;
    let threadId: string | null = null;
    try {
      if (!params.state) throw new UpstreamOAuthError('the authorization server sent no state');
      const seen = await this.#pendingFor(params.state, userId, now);
      const pending = await this.#d.repo.consumePending(params.state, userId, now);
      if (!pending) throw new UpstreamOAuthError('this authorization was already used; connect again');
      threadId = pending.threadId || null;
      const target = await this.#d.serverById(seen.serverId);
      if (!target?.oauth) throw new UpstreamOAuthError('the server no longer exists or no longer uses OAuth');
      serverSlug = target.slug;
      if (params.error) {
        throw new UpstreamOAuthError(`the authorization server answered "${params.error.slice(0, 100)}"`);
      }
      if (!params.code) throw new UpstreamOAuthError('the authorization server sent no code');
      const provider = new VaultOAuthProvider(this, {
        target,
        owner: userOwner(target.id, userId, pending.threadId),
        mode: 'callback',
        via: 'callback',
        codeVerifier: this.#d.vault.open(pending, pendingAad(pending.state)),
      });
      try {
        await auth(provider, {
          serverUrl: remoteUrl(target),
          authorizationCode: params.code,
          fetchFn: this.#d.fetch,
        });
      } catch (err) {
        throw new UpstreamOAuthError(`the authorization server refused the code: ${safeMessage(err)}`, 502);
      }
      this.#d.audit.record({
        category: 'credential',
        action: 'credential.oauth_callback',
        status: 'ok',
        userId,
        serverSlug,
        threadId,
      });
      return target;
    } catch (err) {
      const message = err instanceof UpstreamOAuthError ? err.message : 'internal error';
      if (!(err instanceof UpstreamOAuthError)) {
        this.#logger.error({ err: safeMessage(err) }, 'upstream OAuth callback failed');
      }
      this.#d.audit.record({
        category: 'credential',
        action: 'credential.oauth_callback',
        status: err instanceof UpstreamOAuthError && err.status === 403 ? 'denied' : 'error',
        userId,
        serverSlug,
        threadId,
        error: message,
      });
      throw err instanceof UpstreamOAuthError ? err : new UpstreamOAuthError('something went wrong', 500);
    }
  }

  /** Removes the user's (or thread's) stored tokens for a server. */
  async disconnect(target: OAuthTarget, userId: string, threadId?: string): Promise<boolean> {
    const removed = await this.#d.repo.delete(userOwner(target.id, userId, threadId ?? ''));
    if (removed) {
      this.#d.audit.record({
        category: 'credential',
        action: 'credential.oauth_disconnect',
        status: 'ok',
        userId,
        serverSlug: target.slug,
        threadId: threadId ?? null,
      });
    }
    return removed;
  }

  async #pendingFor(state: string, userId: string, now: Date): Promise<PendingAuthorizationRow> {
    const pending = state.length <= 200 ? await this.#d.repo.findPending(state) : undefined;
    if (!pending) throw new UpstreamOAuthError('unknown authorization; connect again from your client', 404);
    if (pending.userId !== userId) {
      throw new UpstreamOAuthError('this authorization was started by another account', 403);
    }
    if (pending.usedAt) throw new UpstreamOAuthError('this authorization was already used; connect again');
    if (pending.expiresAt <= now) throw new UpstreamOAuthError('this authorization expired; connect again');
    return pending;
  }

  // ----- the refresh job -----

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
      this.#logger.info({ ...counts, purgedPending: purged }, 'upstream OAuth refresh run');
    return counts;
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
    const locked = await this.#d.lock.run(`oauth-refresh:${id}`, REFRESH_LOCK_MS, async () => {
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
    const stored = this.#openTokens(row);
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
        this.#logger.info(
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
      const client = await this.readClient(target);
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
        this.#sealTokens(row, next),
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
        await this.#dropDynamicClient(target);
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
      this.#logger.warn(
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

  // ----- storage, for VaultOAuthProvider -----

  #openTokens(row: CredentialRow): StoredTokens {
    return JSON.parse(this.#d.vault.open(row, aad(row))) as StoredTokens;
  }

  #sealTokens(owner: CredentialOwner, stored: StoredTokens) {
    const expiresAt = expiresAtOf(stored);
    return {
      ...this.#d.vault.seal(JSON.stringify(stored), aad(owner)),
      fieldNames: '',
      expiresAt: expiresAt !== undefined ? new Date(expiresAt) : null,
      status: 'ok' as const,
    };
  }

  /** @internal The owner's tokens in good standing, or undefined. */
  async readTokens(owner: CredentialOwner): Promise<TokenEntry | undefined> {
    const row = await this.#d.repo.find(owner);
    if (!row || row.status !== 'ok') return undefined;
    return { row, stored: this.#openTokens(row), readAt: Date.now() };
  }

  /** @internal Stores tokens the SDK obtained (code exchange, or its own refresh after a 401). */
  async saveTokens(owner: CredentialOwner, tokens: OAuthTokens): Promise<TokenEntry> {
    const stored: StoredTokens = { tokens, obtainedAt: Date.now() };
    const row = await this.#d.repo.upsert(owner, this.#sealTokens(owner, stored));
    return { row, stored, readAt: Date.now() };
  }

  /**
   * @internal Refreshes a token that is about to expire, for a connection about to use it.
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
    if (!result.busy) return this.readTokens(owner);
    // Another process is refreshing this token: wait for what it stores.
    const deadline = Date.now() + REFRESH_LOCK_MS;
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      const current = await this.readTokens(owner);
      if (!current || current.row.ciphertext !== entry.row.ciphertext || Date.now() > deadline)
        return current;
    }
  }

  /**
   * @internal Sends a refresh-token grant the SDK built (after a 401) under the token's
   * refresh lock, waiting for the lock when another refresh holds it. Inside, the request
   * carries the newest stored refresh token (another refresh may have rotated it since the
   * SDK read it), and a successful answer is stored before the lock is released.
   */
  async refreshThroughLock(
    owner: CredentialOwner,
    base: typeof fetch,
    input: string | URL | Request,
    init: RequestInit,
  ): Promise<Response> {
    const first = await this.#d.repo.find(owner);
    if (!first) return base(input, init);
    const deadline = Date.now() + REFRESH_LOCK_MS;
    for (;;) {
      const attempt = await this.#d.lock.run(`oauth-refresh:${first.id}`, REFRESH_LOCK_MS, async () => {
        const row = await this.#d.repo.findById(first.id);
        const stored = row?.status === 'ok' ? this.#openTokens(row) : undefined;
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
            await this.#d.repo.replaceIfUnchanged(row.id, row.ciphertext, this.#sealTokens(row, next));
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

  /** @internal Marks tokens the authorization server refused, if they are still the stored ones. */
  async invalidateTokens(row: CredentialRow, slug: string, reason: string): Promise<void> {
    if (await this.#d.repo.markNeedsConsent(row.id, row.ciphertext)) {
      this.#d.audit.record({
        category: 'credential',
        action: 'credential.needs_consent',
        status: 'error',
        userId: row.userId,
        serverSlug: slug,
        threadId: row.threadId || null,
        error: reason,
      });
    }
  }

  /** @internal The gateway's client at the server's authorization server (static or registered). */
  async readClient(target: OAuthTarget): Promise<OAuthClientInformationMixed | undefined> {
    const row = await this.#d.repo.find(clientOwner(target.id));
    if (!row) return undefined;
    const info = JSON.parse(this.#d.vault.open(row, aad(row))) as OAuthClientInformationMixed;
    // A static client must be the one the server's settings name (it changes with them).
    if (target.oauth?.clientId && info.client_id !== target.oauth.clientId) return undefined;
    return info;
  }

  /**
   * @internal Stores a dynamic registration (one per server, shared by its users: it is the
   * gateway's client). A static client is the admin's, and is never replaced here.
   */
  async saveClient(target: OAuthTarget, info: OAuthClientInformationMixed): Promise<void> {
    if (target.oauth?.clientId) return;
    const owner = clientOwner(target.id);
    await this.#d.repo.upsert(owner, {
      ...this.#d.vault.seal(JSON.stringify(info), aad(owner)),
      fieldNames: '',
    });
  }

  async #dropDynamicClient(target: OAuthTarget): Promise<void> {
    if (!target.oauth?.clientId) await this.#d.repo.delete(clientOwner(target.id));
  }

  /** @internal Forgets a dynamic registration the authorization server no longer accepts. */
  async invalidateClient(target: OAuthTarget): Promise<void> {
    await this.#dropDynamicClient(target);
  }

  /** @internal Records a pending authorization; returns what the connect link needs. */
  async recordPending(input: {
    target: OAuthTarget;
    owner: CredentialOwner;
    state: string;
    codeVerifier: string;
    authorizationUrl: URL;
    via: 'mcp' | 'api' | 'callback';
  }): Promise<{ state: string; authorizationUrl: string; expiresAt: Date }> {
    const expiresAt = new Date(Date.now() + PENDING_TTL_MS);
    const authorizationUrl = input.authorizationUrl.toString();
    await this.#d.repo.insertPending({
      state: input.state,
      userId: input.owner.userId!,
      serverId: input.target.id,
      threadId: input.owner.threadId,
      ...this.#d.vault.seal(input.codeVerifier, pendingAad(input.state)),
      authorizationUrl,
      expiresAt,
    });
    this.#d.audit.record({
      category: 'credential',
      action: 'credential.oauth_connect',
      status: 'ok',
      userId: input.owner.userId,
      serverSlug: input.target.slug,
      threadId: input.owner.threadId || null,
      details: { via: input.via },
    });
    return { state: input.state, authorizationUrl, expiresAt };
  }

  /** @internal For the provider's `clientMetadata`. */
  clientMetadataFor(target: OAuthTarget): OAuthClientMetadata {
    const scope = target.oauth?.scopes.join(' ');
    return {
      client_name: 'MCP Gateway',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // A public client with PKCE, as MCP clients register; an admin's static client may be confidential.
      token_endpoint_auth_method: 'none',
      ...(scope ? { scope } : {}),
    };
  }

  /** @internal */
  nearExpiry(entry: TokenEntry, now: number): boolean {
    return nearExpiry(entry.stored, now);
  }
}

/**
 * The MCP SDK's `OAuthClientProvider` over the vault, for one (user, server[, thread]).
 * `use`: an upstream connection (the SDK transport reads tokens before every request and,
 * on a 401, refreshes or starts an authorization); `connect`: a fresh authorization asked
 * for over the REST API (stored tokens ignored); `callback`: the code exchange.
 *
 * The gateway has no browser: `redirectToAuthorization` records the URL on a pending
 * authorization, and the caller gives the user a link to it.
 */
/**
 * A token request for the refresh-token grant. The SDK sends token requests with a
 * URLSearchParams body; MCP messages have string bodies, so they pass this check without
 * being parsed (it runs on every upstream request of an OAuth server).
 */
function isRefreshGrant(init: RequestInit | undefined): boolean {
  return init?.body instanceof URLSearchParams && init.body.get('grant_type') === 'refresh_token';
}

export class VaultOAuthProvider implements OAuthClientProvider {
  readonly #svc: UpstreamOAuthService;
  readonly #target: OAuthTarget;
  readonly #owner: CredentialOwner;
  readonly #mode: 'use' | 'connect' | 'callback';
  readonly #via: 'mcp' | 'api' | 'callback';
  #entry: TokenEntry | undefined;
  #state: string | undefined;
  #codeVerifier: string | undefined;
  #retryAfter = 0;
  #pending: { state: string; authorizationUrl: string; expiresAt: Date } | undefined;

  constructor(
    svc: UpstreamOAuthService,
    options: {
      target: OAuthTarget;
      owner: CredentialOwner;
      mode: 'use' | 'connect' | 'callback';
      via: 'mcp' | 'api' | 'callback';
      entry?: TokenEntry | undefined;
      codeVerifier?: string | undefined;
    },
  ) {
    this.#svc = svc;
    this.#target = options.target;
    this.#owner = options.owner;
    this.#mode = options.mode;
    this.#via = options.via;
    this.#entry = options.entry;
    this.#codeVerifier = options.codeVerifier;
  }

  /** The authorization this provider started (after the SDK called redirectToAuthorization). */
  get pending(): { state: string; authorizationUrl: string; expiresAt: Date } | undefined {
    return this.#pending;
  }

  /** The gateway link that leads the user to the pending authorization, if one was started. */
  get connectUrl(): string | undefined {
    return this.#pending ? this.#svc.connectUrl(this.#pending.state) : undefined;
  }

  get redirectUrl(): string {
    return this.#svc.redirectUrl;
  }

  get clientMetadata(): OAuthClientMetadata {
    return this.#svc.clientMetadataFor(this.#target);
  }

  state(): string {
    this.#state = randomBytes(24).toString('base64url');
    return this.#state;
  }

  clientInformation(): Promise<OAuthClientInformationMixed | undefined> {
    return this.#svc.readClient(this.#target);
  }

  async saveClientInformation(info: OAuthClientInformationMixed): Promise<void> {
    await this.#svc.saveClient(this.#target, info);
  }

  async tokens(): Promise<OAuthTokens | undefined> {
    if (this.#mode !== 'use') return undefined;
    const now = Date.now();
    let entry = this.#entry;
    if (!entry || now - entry.readAt > REREAD_MS || this.#svc.nearExpiry(entry, now)) {
      entry = await this.#svc.readTokens(this.#owner);
    }
    if (entry?.stored.tokens.refresh_token && this.#svc.nearExpiry(entry, now) && now >= this.#retryAfter) {
      // Refresh before use, under the same lock as the job: never two refreshes of one token.
      const fresh = await this.#svc.refreshForUse(entry);
      if (fresh && !this.#svc.nearExpiry(fresh, Date.now())) entry = fresh;
      else {
        this.#retryAfter = Date.now() + RETRY_AFTER_MS;
        entry = fresh;
      }
    }
    this.#entry = entry;
    return entry?.stored.tokens;
  }

  async saveTokens(tokens: OAuthTokens): Promise<void> {
    this.#entry = await this.#svc.saveTokens(this.#owner, tokens);
  }

  /**
   * The fetch for this connection's transport. The SDK refreshes by itself after a 401,
   * outside the refresh lock, with the refresh token it read a moment ago; two such
   * refreshes (two requests that both got a 401, or one beside the job) would present the
   * same refresh token twice, and an authorization server that rotates them revokes the
   * whole grant on the second. So a refresh-token grant sent through here waits for the
   * lock, presents the newest stored refresh token, and stores the answer before letting go.
   */
  serializedRefreshFetch(base: typeof fetch): typeof fetch {
    return (async (input: string | URL | Request, init?: RequestInit) => {
      if (this.#mode !== 'use' || !isRefreshGrant(init)) return base(input, init);
      return this.#svc.refreshThroughLock(this.#owner, base, input, init!);
    }) as typeof fetch;
  }

  async redirectToAuthorization(authorizationUrl: URL): Promise<void> {
    if (this.#mode === 'callback')
      throw new Error('the authorization server asked for another authorization');
    this.#pending = await this.#svc.recordPending({
      target: this.#target,
      owner: this.#owner,
      state: this.#state ?? this.state(),
      codeVerifier: this.#codeVerifier ?? '',
      authorizationUrl,
      via: this.#via,
    });
  }

  saveCodeVerifier(codeVerifier: string): void {
    this.#codeVerifier = codeVerifier;
  }

  codeVerifier(): string {
    if (!this.#codeVerifier) throw new Error('no PKCE code verifier for this authorization');
    return this.#codeVerifier;
  }

  async invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): Promise<void> {
    if ((scope === 'all' || scope === 'tokens') && this.#entry) {
      await this.#svc.invalidateTokens(
        this.#entry.row,
        this.#target.slug,
        'the authorization server refused the stored grant',
      );
      this.#entry = undefined;
    }
    if (scope === 'all' || scope === 'client') await this.#svc.invalidateClient(this.#target);
    // 'verifier': pending authorizations are single-use already; 'discovery': nothing is cached.
  }
}
