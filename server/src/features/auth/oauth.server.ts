import type { JsonWebKey } from 'node:crypto';
import type { Router } from 'express';
import { decodeProtectedHeader, importJWK, jwtVerify, type JWTPayload } from 'jose';
import type { Provider } from 'oidc-provider';
import type { OAuthGrantView } from '@gateway/shared';
import { AppError, notFound } from '../../platform/http/errors.ts';
import type { AuditSink } from '../../core/audit.ts';
import { isAdmin, type Principal } from '../../core/principal.ts';
import type { WebAuth } from './auth.web.ts';
import { createOidcProvider, MCP_SCOPE, resourceFor, type OidcProviderOptions } from './oauth.provider.ts';
import { oauthRoutes } from './oauth.routes.ts';

/** What OAuthServer.create needs: the provider's options, and what its pages use. */
export interface OAuthServerOptions extends OidcProviderOptions {
  web: WebAuth;
  audit: AuditSink;
}

/**
 * The gateway's OAuth 2.1 authorization server for MCP clients, built on oidc-provider:
 * RFC 8414 metadata, dynamic client registration (RFC 7591), authorization code with PKCE
 * S256, RFC 8707 resource indicators bound into short-lived audience-restricted JWT access
 * tokens, refresh tokens rotated on every use (a replayed one revokes the whole grant),
 * revocation. Sign-in is the gateway's own web login; consent is a page per client.
 */
export class OAuthServer {
  readonly provider: Provider;
  readonly #o: OAuthServerOptions;
  readonly #publicKey: ReturnType<typeof importJWK>;

  private constructor(options: OAuthServerOptions, provider: Provider, publicJwk: JsonWebKey) {
    this.#o = options;
    this.provider = provider;
    this.#publicKey = importJWK(publicJwk as never, 'ES256');
  }

  static async create(o: OAuthServerOptions): Promise<OAuthServer> {
    const { provider, publicJwk } = await createOidcProvider(o);
    return new OAuthServer(o, provider, publicJwk);
  }

  /** Verifies a bearer token for the MCP endpoint at `path`: our signature, issuer, audience = that endpoint. */
  async authenticate(
    token: string,
    path: string,
  ): Promise<{ principal: Principal } | { rejected: string } | undefined> {
    // Not a compact JWS (header.payload.signature): another authenticator's, such as an API
    // key. Said without decoding, because a failed decode throws, and throwing on every
    // API-key request cost the hot path measurably.
    const dot = token.indexOf('.');
    if (dot <= 0 || token.indexOf('.', dot + 1) <= dot + 1) return undefined;
    try {
      if (decodeProtectedHeader(token).alg !== 'ES256') return undefined;
    } catch {
      return undefined; // not a JWT: another authenticator's (an API key)
    }
    const audience = resourceFor(this.#o.publicUrl, path);
    if (!audience) return { rejected: 'OAuth access tokens are accepted on MCP endpoints only' };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await this.#publicKey, {
        issuer: this.#o.publicUrl,
        audience,
        algorithms: ['ES256'],
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      return {
        rejected:
          code === 'ERR_JWT_EXPIRED'
            ? 'expired'
            : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED'
              ? 'wrong audience'
              : 'invalid token',
      };
    }
    if (
      !String(payload['scope'] ?? '')
        .split(' ')
        .includes(MCP_SCOPE)
    )
      return { rejected: 'missing scope mcp' };
    // Tokens issued before grant ids were put in them carry none; they expire within the TTL.
    const grantId = payload['grant_id'];
    if (grantId !== undefined && (typeof grantId !== 'string' || !(await this.#o.grants.isLive(grantId))))
      return { rejected: 'grant revoked' };
    const user = await this.#o.users.findById(String(payload.sub));
    if (!user || user.disabledAt) return { rejected: 'unknown user' };
    return {
      principal: {
        userId: user.id,
        displayName: user.displayName,
        role: user.role,
        groups: user.groups,
        via: 'oauth',
        oauthClientId: String(payload['client_id'] ?? ''),
        oauthGrantId: typeof grantId === 'string' ? grantId : undefined,
      },
    };
  }

  /** RFC 9728 protected resource metadata of an MCP endpoint. */
  protectedResourceMetadata(resource: string) {
    return {
      resource,
      authorization_servers: [this.#o.publicUrl],
      scopes_supported: [MCP_SCOPE],
      bearer_methods_supported: ['header'],
      resource_name: 'MCP Gateway',
    };
  }

  /** The `WWW-Authenticate` parameters for a 401 on `path`. */
  challenge(path: string): string | undefined {
    const resource = resourceFor(this.#o.publicUrl, path);
    if (!resource) return undefined;
    const suffix = new URL(resource).pathname;
    return `resource_metadata="${this.#o.publicUrl}/.well-known/oauth-protected-resource${suffix}", scope="${MCP_SCOPE}"`;
  }

  /** Express routes: the provider's own paths, metadata documents, and the interaction pages. */
  routes(): Router {
    return oauthRoutes({
      provider: this.provider,
      publicUrl: this.#o.publicUrl,
      web: this.#o.web,
      audit: this.#o.audit,
      logger: this.#o.logger,
      resourceMetadata: (resource) => this.protectedResourceMetadata(resource),
    });
  }

  /** Grants (connected clients) of a user, or of everyone for admins. */
  async listGrants(principal: Principal, all: boolean): Promise<OAuthGrantView[]> {
    if (all && !isAdmin(principal))
      throw new AppError('forbidden', 'only admins can list every connected client');
    const rows = await this.#o.repo.oauthGrants(all ? undefined : principal.userId);
    const views: OAuthGrantView[] = [];
    for (const row of rows) {
      const p = row.payload as {
        clientId?: string;
        accountId?: string;
        iat?: number;
        exp?: number;
        resources?: Record<string, string>;
      };
      const client = p.clientId
        ? await this.provider.Client.find(p.clientId).catch(() => undefined)
        : undefined;
      views.push({
        id: row.key.slice('Grant:'.length),
        clientId: p.clientId ?? '',
        clientName: client?.clientName ?? p.clientId ?? '',
        userId: p.accountId ?? '',
        resources: Object.keys(p.resources ?? {}),
        createdAt: p.iat ? new Date(p.iat * 1000).toISOString() : null,
        expiresAt: row.expiresAt?.toISOString() ?? null,
      });
    }
    return views;
  }

  /** Revokes a grant and every token issued under it. Someone else's grant is "not found". */
  async revokeGrant(principal: Principal, grantId: string): Promise<void> {
    const row = await this.#o.repo.oauthFind(`Grant:${grantId}`);
    const owner = (row?.payload as { accountId?: string } | undefined)?.accountId;
    if (!row || (owner !== principal.userId && !isAdmin(principal))) throw notFound('connected client');
    await this.#o.repo.oauthRevokeByGrantId(grantId);
    await this.#o.repo.oauthDestroy(`Grant:${grantId}`);
    this.#o.grants.revoked(grantId);
    this.#o.audit.record({
      category: 'auth',
      action: 'oauth.revoke',
      status: 'ok',
      userId: principal.userId,
      details: { grantId, owner },
    });
  }
}
