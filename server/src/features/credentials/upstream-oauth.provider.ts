import { randomBytes } from 'node:crypto';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import type { CredentialOwner } from './credentials.repository.ts';
import { isRefreshGrant, type LockedRefreshFetch } from './upstream-oauth.fetch.ts';
import type { UpstreamOAuthRefresher } from './upstream-oauth.refresh.ts';
import {
  nearExpiry,
  type OAuthTarget,
  type PendingAuthorization,
  type TokenEntry,
  type UpstreamOAuthStore,
} from './upstream-oauth.store.ts';

/** How often a provider re-reads its tokens (another process may have refreshed them). */
const REREAD_MS = 5_000;
/** After a failed on-demand refresh, wait this long before trying again (the job retries too). */
const RETRY_AFTER_MS = 10_000;

/** The gateway's own links; they need the public URL, known once the server listens. */
export interface GatewayLinks {
  /** Where authorization servers send the user back. */
  readonly redirectUrl: string;
  /** The link to give a user for a pending authorization. */
  connectUrl(state: string): string;
}

/** What the providers of one UpstreamOAuthService share. */
export interface ProviderParts {
  links: GatewayLinks;
  store: UpstreamOAuthStore;
  refresher: UpstreamOAuthRefresher;
  lockFetch: LockedRefreshFetch;
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
export class VaultOAuthProvider implements OAuthClientProvider {
  readonly #parts: ProviderParts;
  readonly #target: OAuthTarget;
  readonly #owner: CredentialOwner;
  readonly #mode: 'use' | 'connect' | 'callback';
  readonly #via: 'mcp' | 'api' | 'callback';
  #entry: TokenEntry | undefined;
  #state: string | undefined;
  #codeVerifier: string | undefined;
  #retryAfter = 0;
  #pending: PendingAuthorization | undefined;

  constructor(
    parts: ProviderParts,
    options: {
      target: OAuthTarget;
      owner: CredentialOwner;
      mode: 'use' | 'connect' | 'callback';
      via: 'mcp' | 'api' | 'callback';
      entry?: TokenEntry | undefined;
      codeVerifier?: string | undefined;
    },
  ) {
    this.#parts = parts;
    this.#target = options.target;
    this.#owner = options.owner;
    this.#mode = options.mode;
    this.#via = options.via;
    this.#entry = options.entry;
    this.#codeVerifier = options.codeVerifier;
  }

  /** The authorization this provider started (after the SDK called redirectToAuthorization). */
  get pending(): PendingAuthorization | undefined {
    return this.#pending;
  }

  /** The gateway link that leads the user to the pending authorization, if one was started. */
  get connectUrl(): string | undefined {
    return this.#pending ? this.#parts.links.connectUrl(this.#pending.state) : undefined;
  }

  get redirectUrl(): string {
    return this.#parts.links.redirectUrl;
  }

  get clientMetadata(): OAuthClientMetadata {
    const scope = this.#target.oauth?.scopes.join(' ');
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

  state(): string {
    this.#state = randomBytes(24).toString('base64url');
    return this.#state;
  }

  clientInformation(): Promise<OAuthClientInformationMixed | undefined> {
    return this.#parts.store.readClient(this.#target);
  }

  async saveClientInformation(info: OAuthClientInformationMixed): Promise<void> {
    await this.#parts.store.saveClient(this.#target, info);
  }

  async tokens(): Promise<OAuthTokens | undefined> {
    if (this.#mode !== 'use') return undefined;
    const now = Date.now();
    let entry = this.#entry;
    if (!entry || now - entry.readAt > REREAD_MS || nearExpiry(entry.stored, now)) {
      entry = await this.#parts.store.readTokens(this.#owner);
    }
    if (entry?.stored.tokens.refresh_token && nearExpiry(entry.stored, now) && now >= this.#retryAfter) {
      // Refresh before use, under the same lock as the job: never two refreshes of one token.
      const fresh = await this.#parts.refresher.refreshForUse(entry);
      if (fresh && !nearExpiry(fresh.stored, Date.now())) entry = fresh;
      else {
        this.#retryAfter = Date.now() + RETRY_AFTER_MS;
        entry = fresh;
      }
    }
    this.#entry = entry;
    return entry?.stored.tokens;
  }

  async saveTokens(tokens: OAuthTokens): Promise<void> {
    this.#entry = await this.#parts.store.saveTokens(this.#owner, tokens);
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
      return this.#parts.lockFetch.send(this.#owner, base, input, init!);
    }) as typeof fetch;
  }

  async redirectToAuthorization(authorizationUrl: URL): Promise<void> {
    if (this.#mode === 'callback')
      throw new Error('the authorization server asked for another authorization');
    this.#pending = await this.#parts.store.recordPending({
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
      await this.#parts.store.invalidateTokens(
        this.#entry.row,
        this.#target.slug,
        'the authorization server refused the stored grant',
      );
      this.#entry = undefined;
    }
    if (scope === 'all' || scope === 'client') await this.#parts.store.dropDynamicClient(this.#target);
    // 'verifier': pending authorizations are single-use already; 'discovery': nothing is cached.
  }
}
