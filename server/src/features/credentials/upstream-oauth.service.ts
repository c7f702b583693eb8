import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { OAuthConnectView } from '@gateway/shared';
import type { Vault } from '../../platform/crypto/vault.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditSink } from '../audit/index.ts';
import type { RefreshLock } from './credentials.lock.ts';
import type {
  CredentialOwner,
  CredentialRow,
  CredentialsRepository,
  PendingAuthorizationRow,
} from './credentials.repository.ts';
import { LockedRefreshFetch } from './upstream-oauth.fetch.ts';
import { VaultOAuthProvider, type ProviderParts } from './upstream-oauth.provider.ts';
import { safeMessage, UpstreamOAuthRefresher, type RefreshOutcome } from './upstream-oauth.refresh.ts';
import { UpstreamOAuthStore, type OAuthTarget, type PendingAuthorization } from './upstream-oauth.store.ts';

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
  readonly #store: UpstreamOAuthStore;
  /** What every provider of this service shares. */
  readonly #parts: ProviderParts;
  #publicUrl: string | undefined;

  constructor(deps: UpstreamOAuthDeps) {
    this.#d = deps;
    this.#logger = deps.logger.child({ feature: 'credentials', part: 'upstream-oauth' });
    this.#publicUrl = deps.publicUrl;
    this.#store = new UpstreamOAuthStore(deps);
    const withStore = { ...deps, logger: this.#logger, store: this.#store };
    this.#parts = {
      links: this,
      store: this.#store,
      refresher: new UpstreamOAuthRefresher(withStore),
      lockFetch: new LockedRefreshFetch(withStore),
    };
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
    const entry = row ? { row, stored: this.#store.openTokens(row), readAt: Date.now() } : undefined;
    return {
      provider: new VaultOAuthProvider(this.#parts, { target, owner, mode: 'use', entry, via: 'mcp' }),
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
    const provider = new VaultOAuthProvider(this.#parts, {
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
      const provider = new VaultOAuthProvider(this.#parts, {
        target,
        owner: userOwner(target.id, userId, pending.threadId),
        mode: 'callback',
        via: 'callback',
        codeVerifier: this.#store.codeVerifierOf(pending),
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
   * Refreshes every token in good standing that expires within the margin (the
   * `credentials.refresh` job); see UpstreamOAuthRefresher.refreshDue.
   */
  refreshDue(): Promise<Record<RefreshOutcome, number>> {
    return this.#parts.refresher.refreshDue();
  }

  // ----- the store, for callers that hold only the service -----

  /** The gateway's client at the server's authorization server (static or registered). */
  readClient(target: OAuthTarget): Promise<OAuthClientInformationMixed | undefined> {
    return this.#store.readClient(target);
  }

  /** Records a pending authorization; returns what the connect link needs. */
  recordPending(input: Parameters<UpstreamOAuthStore['recordPending']>[0]): Promise<PendingAuthorization> {
    return this.#store.recordPending(input);
  }
}
