import type { OAuthClientInformationMixed, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { TransportConfig } from '@gateway/shared';
import type { Vault } from '../../platform/crypto/vault.ts';
import type { AuditSink } from '../audit/index.ts';
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

/** Tokens as sealed: the SDK's tokens (with `issuer`, the authorization server) and when they arrived. */
export interface StoredTokens {
  tokens: OAuthTokens;
  obtainedAt: number;
}

/** Stored tokens with the row they came from (for compare-and-set) and when they were read. */
export interface TokenEntry {
  row: CredentialRow;
  stored: StoredTokens;
  readAt: number;
}

/** A pending authorization the provider recorded: what the connect link needs. */
export interface PendingAuthorization {
  state: string;
  authorizationUrl: string;
  expiresAt: Date;
}

/** How long a pending authorization (and its connect link) stays usable. */
const PENDING_TTL_MS = 10 * 60_000;

export const expiresAtOf = (s: StoredTokens) =>
  s.tokens.expires_in !== undefined ? s.obtainedAt + s.tokens.expires_in * 1000 : undefined;

/**
 * Whether an access token is (nearly) expired: within a third of its lifetime, at most a
 * minute, of its expiry (so a short-lived token is not refreshed on every use).
 */
export function nearExpiry(s: StoredTokens, now: number): boolean {
  const expiresAt = expiresAtOf(s);
  if (expiresAt === undefined) return false;
  const skew = Math.min(60_000, (expiresAt - s.obtainedAt) / 3);
  return expiresAt - skew <= now;
}

const clientOwner = (serverId: string): CredentialOwner => ({
  scope: 'server',
  kind: 'oauth',
  serverId,
  userId: null,
  threadId: '',
});

/**
 * Upstream OAuth's sealed storage: each user's (or thread's) tokens, the gateway's client
 * at each server's authorization server, and pending authorizations with their PKCE
 * verifiers. What the SDK hands a VaultOAuthProvider ends up here.
 */
export class UpstreamOAuthStore {
  readonly #repo: CredentialsRepository;
  readonly #vault: Vault;
  readonly #audit: AuditSink;

  constructor(deps: { repo: CredentialsRepository; vault: Vault; audit: AuditSink }) {
    this.#repo = deps.repo;
    this.#vault = deps.vault;
    this.#audit = deps.audit;
  }

  // ----- tokens -----

  openTokens(row: CredentialRow): StoredTokens {
    return JSON.parse(this.#vault.open(row, aad(row))) as StoredTokens;
  }

  sealTokens(owner: CredentialOwner, stored: StoredTokens) {
    const expiresAt = expiresAtOf(stored);
    return {
      ...this.#vault.seal(JSON.stringify(stored), aad(owner)),
      fieldNames: '',
      expiresAt: expiresAt !== undefined ? new Date(expiresAt) : null,
      status: 'ok' as const,
    };
  }

  /** The owner's tokens in good standing, or undefined. */
  async readTokens(owner: CredentialOwner): Promise<TokenEntry | undefined> {
    const row = await this.#repo.find(owner);
    if (!row || row.status !== 'ok') return undefined;
    return { row, stored: this.openTokens(row), readAt: Date.now() };
  }

  /** Stores tokens the SDK obtained (code exchange, or its own refresh after a 401). */
  async saveTokens(owner: CredentialOwner, tokens: OAuthTokens): Promise<TokenEntry> {
    const stored: StoredTokens = { tokens, obtainedAt: Date.now() };
    const row = await this.#repo.upsert(owner, this.sealTokens(owner, stored));
    return { row, stored, readAt: Date.now() };
  }

  /** Marks tokens the authorization server refused, if they are still the stored ones. */
  async invalidateTokens(row: CredentialRow, slug: string, reason: string): Promise<void> {
    if (await this.#repo.markNeedsConsent(row.id, row.ciphertext)) {
      this.#audit.record({
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

  // ----- the gateway's client at each authorization server -----

  /** The gateway's client at the server's authorization server (static or registered). */
  async readClient(target: OAuthTarget): Promise<OAuthClientInformationMixed | undefined> {
    const row = await this.#repo.find(clientOwner(target.id));
    if (!row) return undefined;
    const info = JSON.parse(this.#vault.open(row, aad(row))) as OAuthClientInformationMixed;
    // A static client must be the one the server's settings name (it changes with them).
    if (target.oauth?.clientId && info.client_id !== target.oauth.clientId) return undefined;
    return info;
  }

  /**
   * Stores a dynamic registration (one per server, shared by its users: it is the
   * gateway's client). A static client is the admin's, and is never replaced here.
   */
  async saveClient(target: OAuthTarget, info: OAuthClientInformationMixed): Promise<void> {
    if (target.oauth?.clientId) return;
    const owner = clientOwner(target.id);
    await this.#repo.upsert(owner, {
      ...this.#vault.seal(JSON.stringify(info), aad(owner)),
      fieldNames: '',
    });
  }

  /** Forgets a dynamic registration the authorization server no longer accepts. */
  async dropDynamicClient(target: OAuthTarget): Promise<void> {
    if (!target.oauth?.clientId) await this.#repo.delete(clientOwner(target.id));
  }

  // ----- pending authorizations -----

  /** Records a pending authorization; returns what the connect link needs. */
  async recordPending(input: {
    target: OAuthTarget;
    owner: CredentialOwner;
    state: string;
    codeVerifier: string;
    authorizationUrl: URL;
    via: 'mcp' | 'api' | 'callback';
  }): Promise<PendingAuthorization> {
    const expiresAt = new Date(Date.now() + PENDING_TTL_MS);
    const authorizationUrl = input.authorizationUrl.toString();
    await this.#repo.insertPending({
      state: input.state,
      userId: input.owner.userId!,
      serverId: input.target.id,
      threadId: input.owner.threadId,
      ...this.#vault.seal(input.codeVerifier, pendingAad(input.state)),
      authorizationUrl,
      expiresAt,
    });
    this.#audit.record({
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

  /** The PKCE verifier sealed with a pending authorization. */
  codeVerifierOf(pending: PendingAuthorizationRow): string {
    return this.#vault.open(pending, pendingAad(pending.state));
  }
}
