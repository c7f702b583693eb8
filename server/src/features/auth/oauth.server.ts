import { createPublicKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { decodeProtectedHeader, importJWK, jwtVerify, type JWTPayload } from 'jose';
import {
  errors,
  Provider,
  type Adapter,
  type AdapterPayload,
  type Configuration,
  type KoaContextWithOIDC,
} from 'oidc-provider';
import type { OAuthGrantView } from '@gateway/shared';
import type { Vault } from '../../platform/crypto/vault.ts';
import { AppError, notFound } from '../../platform/http/errors.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditSink } from '../../core/audit.ts';
import type { UsersRepository } from '../users/index.ts';
import { isAdmin, type Principal } from '../../core/principal.ts';
import { consentPage, errorPage } from './auth.pages.ts';
import type { AuthRepository } from './auth.repository.ts';
import { sharedSecret } from './auth.secrets.ts';
import type { WebAuth } from './auth.web.ts';

/** The scope MCP clients ask for; it grants use of the gateway's MCP endpoints. */
export const MCP_SCOPE = 'mcp';

const PROVIDER_PATHS = /^\/(oauth\/(?!interaction\/)|\.well-known\/openid-configuration$)/;

/** The resource URL of an MCP endpoint path (`/mcp` or `/mcp/{slug}`), or undefined. */
export function resourceFor(publicUrl: string, path: string): string | undefined {
  const m = /^\/mcp(?:\/([a-z0-9-]+))?\/?$/.exec(path);
  if (!m) return undefined;
  return m[1] ? `${publicUrl}/mcp/${m[1]}` : `${publicUrl}/mcp`;
}

/** oidc-provider storage over the database, one instance per model. */
function adapterFactory(repo: AuthRepository) {
  return class DatabaseAdapter implements Adapter {
    readonly model: string;
    constructor(model: string) {
      this.model = model;
    }
    #key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      await repo.oauthUpsert({
        key: this.#key(id),
        model: this.model,
        payload: payload as Record<string, unknown>,
        grantId: payload.grantId ?? null,
        userCode: payload.userCode ?? null,
        uid: payload.uid ?? null,
        accountId: payload.accountId ?? null,
        expiresAt: expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
      });
    }
    async #load(row: Awaited<ReturnType<AuthRepository['oauthFind']>>): Promise<AdapterPayload | undefined> {
      if (!row) return undefined;
      if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) return undefined;
      return {
        ...(row.payload as AdapterPayload),
        ...(row.consumedAt ? { consumed: Math.floor(row.consumedAt.getTime() / 1000) } : {}),
      };
    }
    async find(id: string) {
      return this.#load(await repo.oauthFind(this.#key(id)));
    }
    async findByUid(uid: string) {
      return this.#load(await repo.oauthFindBy(this.model, 'uid', uid));
    }
    async findByUserCode(userCode: string) {
      return this.#load(await repo.oauthFindBy(this.model, 'userCode', userCode));
    }
    async consume(id: string) {
      await repo.oauthConsume(this.#key(id));
    }
    async destroy(id: string) {
      await repo.oauthDestroy(this.#key(id));
    }
    async revokeByGrantId(grantId: string) {
      await repo.oauthRevokeByGrantId(grantId);
    }
  };
}

export interface OAuthServerOptions {
  publicUrl: string;
  trustProxy: boolean;
  accessTokenTtlSeconds: number;
  refreshTokenTtlDays: number;
  /** Custom URI schemes allowed as redirect URIs besides https and loopback http (e.g. `cursor`). */
  allowedRedirectSchemes: string[];
  repo: AuthRepository;
  vault: Vault;
  users: UsersRepository;
  web: WebAuth;
  audit: AuditSink;
  logger: Logger;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Redirect URIs must be https, http on a loopback host, or an allowed custom scheme. */
export function redirectUriAllowed(uri: string, schemes: readonly string[]): boolean {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return false;
  }
  if (u.hash) return false;
  if (u.protocol === 'https:') return true;
  if (u.protocol === 'http:') return LOOPBACK.has(u.hostname);
  return schemes.includes(u.protocol.replace(/:$/, ''));
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
    const jwkText = await sharedSecret(o.repo, o.vault, 'oauth-signing-key', () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      return JSON.stringify({
        ...privateKey.export({ format: 'jwk' }),
        alg: 'ES256',
        use: 'sig',
        kid: `gw-${Date.now().toString(36)}`,
      });
    });
    const privateJwk = JSON.parse(jwkText) as JsonWebKey & { kid: string };
    const publicJwk = {
      ...createPublicKey({ key: privateJwk, format: 'jwk' }).export({ format: 'jwk' }),
      alg: 'ES256',
      kid: privateJwk.kid,
    };
    const cookieKey = await sharedSecret(o.repo, o.vault, 'oauth-cookie-key');
    const mcpResource = (indicator: string) => {
      try {
        const u = new URL(indicator);
        return u.origin === new URL(o.publicUrl).origin && resourceFor(o.publicUrl, u.pathname) === indicator;
      } catch {
        return false;
      }
    };
    const configuration: Configuration = {
      adapter: adapterFactory(o.repo),
      jwks: { keys: [privateJwk as never] },
      cookies: { keys: [cookieKey] },
      scopes: ['openid', 'offline_access', MCP_SCOPE],
      claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
      async findAccount(_ctx, id) {
        const user = await o.users.findById(id);
        if (!user || user.disabledAt) return undefined;
        return {
          accountId: id,
          async claims() {
            return { sub: id, name: user.displayName, ...(user.email ? { email: user.email } : {}) };
          },
        };
      },
      interactions: { url: (_ctx, interaction) => `/oauth/interaction/${interaction.uid}` },
      routes: {
        authorization: '/oauth/authorize',
        token: '/oauth/token',
        registration: '/oauth/register',
        jwks: '/oauth/jwks',
        revocation: '/oauth/revoke',
        end_session: '/oauth/session/end',
        userinfo: '/oauth/userinfo',
        introspection: '/oauth/introspect',
        code_verification: '/oauth/device',
        device_authorization: '/oauth/device/auth',
        pushed_authorization_request: '/oauth/par',
        backchannel_authentication: '/oauth/backchannel',
        challenge: '/oauth/challenge',
      },
      features: {
        devInteractions: { enabled: false },
        registration: { enabled: true },
        revocation: { enabled: true },
        resourceIndicators: {
          enabled: true,
          // A client that names no resource gets a token for the aggregate endpoint.
          defaultResource: (_ctx, _client, oneOf) => oneOf ?? `${o.publicUrl}/mcp`,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, indicator) => {
            if (!mcpResource(indicator)) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
            return {
              scope: MCP_SCOPE,
              audience: indicator,
              accessTokenTTL: o.accessTokenTtlSeconds,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'ES256' } },
            };
          },
        },
      },
      pkce: { required: () => true },
      clientDefaults: {
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        // The signing key is P-256: ID tokens (for clients that ask for openid) use ES256 too.
        id_token_signed_response_alg: 'ES256',
      },
      extraClientMetadata: {
        // Not a real property: a hook that runs on every registration to vet redirect URIs.
        properties: ['x_gateway_policy'],
        validator(_ctx, key, _value, metadata) {
          if (key !== 'x_gateway_policy') return;
          for (const uri of (metadata['redirect_uris'] as string[] | undefined) ?? []) {
            if (!redirectUriAllowed(uri, o.allowedRedirectSchemes)) {
              throw new errors.InvalidRedirectUri(
                `redirect_uris must be https or http on a loopback host: ${uri}`,
              );
            }
          }
        },
      },
      issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
      rotateRefreshToken: true,
      expiresWithSession: async () => false,
      ttl: {
        AccessToken: o.accessTokenTtlSeconds,
        AuthorizationCode: 60,
        RefreshToken: o.refreshTokenTtlDays * 86_400,
        Grant: o.refreshTokenTtlDays * 86_400,
        Interaction: 600,
        Session: 12 * 3600,
        IdToken: 3600,
      },
      clientBasedCORS: () => true,
      renderError: async (ctx: KoaContextWithOIDC, out) => {
        ctx.type = 'html';
        ctx.body = errorPage(
          'Authorization failed',
          String(out['error_description'] ?? out['error'] ?? 'error'),
        );
      },
    };
    const provider = new Provider(o.publicUrl, configuration);
    provider.proxy = o.trustProxy;
    provider.on('server_error', (_ctx: unknown, err: Error) => o.logger.error({ err }, 'oauth server error'));
    provider.on('grant.revoked', (_ctx: unknown, grantId: string) =>
      o.logger.info({ grantId }, 'oauth grant revoked'),
    );
    provider.on('refresh_token.consumed', () => {});
    const server = new OAuthServer(o, provider, publicJwk as JsonWebKey);
    return server;
  }

  /** Verifies a bearer token for the MCP endpoint at `path`: our signature, issuer, audience = that endpoint. */
  async authenticate(
    token: string,
    path: string,
  ): Promise<{ principal: Principal } | { rejected: string } | undefined> {
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
    const router = Router();
    const callback = this.provider.callback();
    const publicUrl = this.#o.publicUrl;

    // RFC 9728: path-suffixed and root protected resource metadata.
    router.get(
      [
        '/.well-known/oauth-protected-resource',
        '/.well-known/oauth-protected-resource/mcp',
        '/.well-known/oauth-protected-resource/mcp/:slug',
      ],
      (req, res) => {
        const slug = req.params['slug'] as string | undefined;
        const resource = slug ? resourceFor(publicUrl, `/mcp/${slug}`) : `${publicUrl}/mcp`;
        if (!resource) return void res.status(404).json({ error: 'not_found' });
        res
          .set('Cache-Control', 'public, max-age=300')
          .set('Access-Control-Allow-Origin', '*')
          .json(this.protectedResourceMetadata(resource));
      },
    );
    // RFC 8414 metadata: oidc-provider serves the OpenID discovery document, which is a superset.
    router.get('/.well-known/oauth-authorization-server', (req, res) => {
      req.url = '/.well-known/openid-configuration';
      void callback(req, res);
    });
    router.use((req, res, next) => {
      if (!PROVIDER_PATHS.test(req.path)) return next();
      void callback(req, res);
    });

    const form = express.urlencoded({ extended: false, limit: '16kb' });
    const web = this.#o.web;
    router.get(
      '/oauth/interaction/:uid',
      web.session,
      this.#handler(async (req, res) => {
        const details = await this.provider.interactionDetails(req, res);
        const principal = await web.principalFromSession(req);
        if (!principal) {
          res.redirect(`/auth/login?returnTo=${encodeURIComponent(`/oauth/interaction/${details.uid}`)}`);
          return;
        }
        if (details.prompt.name === 'login') {
          await this.provider.interactionFinished(
            req,
            res,
            { login: { accountId: principal.userId } },
            { mergeWithLastSubmission: false },
          );
          return;
        }
        if (details.session?.accountId !== principal.userId) {
          // Signed in as someone else since the flow began: start over as the current user.
          await this.provider.interactionFinished(
            req,
            res,
            { login: { accountId: principal.userId } },
            { mergeWithLastSubmission: false },
          );
          return;
        }
        const client = await this.provider.Client.find(String(details.params['client_id']));
        const resources = ([] as string[]).concat(
          (details.params['resource'] as string | string[] | undefined) ?? [],
        );
        // The form's POST ends in a redirect to the client's redirect URI: CSP form-action
        // applies to that redirect too, so the client's origin (or scheme) must be allowed.
        const redirect = new URL(String(details.params['redirect_uri']));
        const target =
          redirect.protocol === 'http:' || redirect.protocol === 'https:'
            ? redirect.origin
            : redirect.protocol;
        res.set('Cache-Control', 'no-store');
        res.set(
          'Content-Security-Policy',
          `default-src 'self'; form-action 'self' ${target}; frame-ancestors 'none'; base-uri 'self'; object-src 'none'`,
        );
        res.send(
          consentPage({
            uid: details.uid,
            csrf: web.csrfToken(req),
            clientName: client?.clientName ?? String(details.params['client_id']),
            clientId: String(details.params['client_id']),
            redirectUri: String(details.params['redirect_uri']),
            resources: resources.length ? resources : [`${publicUrl}/mcp`],
            scopes: String(details.params['scope'] ?? '')
              .split(' ')
              .filter(Boolean),
            userName: principal.displayName,
          }),
        );
      }),
    );

    router.post(
      '/oauth/interaction/:uid/confirm',
      web.session,
      form,
      this.#handler(async (req, res) => {
        const details = await this.provider.interactionDetails(req, res);
        const principal = await web.principalFromSession(req);
        if (
          !principal ||
          details.session?.accountId !== principal.userId ||
          !web.checkCsrf(req, (req.body as Record<string, unknown>)['_csrf'])
        ) {
          res
            .status(403)
            .send(
              errorPage(
                'Consent failed',
                'The form expired or you are signed in as someone else. Start again from your client.',
              ),
            );
          return;
        }
        const missing = details.prompt.details as {
          missingOIDCScope?: string[];
          missingOIDCClaims?: string[];
          missingResourceScopes?: Record<string, string[]>;
        };
        const grant = details.grantId
          ? ((await this.provider.Grant.find(details.grantId)) ??
            new this.provider.Grant({
              accountId: principal.userId,
              clientId: String(details.params['client_id']),
            }))
          : new this.provider.Grant({
              accountId: principal.userId,
              clientId: String(details.params['client_id']),
            });
        if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
        if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
        for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
        const grantId = await grant.save();
        this.#o.audit.record({
          category: 'auth',
          action: 'oauth.consent',
          status: 'ok',
          userId: principal.userId,
          oauthClientId: String(details.params['client_id']),
          ip: req.ip ?? null,
          details: { resources: Object.keys(missing.missingResourceScopes ?? {}) },
        });
        await this.provider.interactionFinished(
          req,
          res,
          { consent: { grantId } },
          { mergeWithLastSubmission: true },
        );
      }),
    );

    router.post(
      '/oauth/interaction/:uid/abort',
      web.session,
      form,
      this.#handler(async (req, res) => {
        if (!web.checkCsrf(req, (req.body as Record<string, unknown>)['_csrf'])) {
          res
            .status(403)
            .send(errorPage('Request failed', 'The form expired. Start again from your client.'));
          return;
        }
        await this.provider.interactionFinished(
          req,
          res,
          { error: 'access_denied', error_description: 'the user denied access' },
          { mergeWithLastSubmission: false },
        );
      }),
    );
    return router;
  }

  #handler(fn: (req: Request, res: Response) => Promise<void>): RequestHandler {
    return (req, res) => {
      fn(req, res).catch((err: unknown) => {
        const name = (err as Error).name;
        this.#o.logger.warn({ err: (err as Error).message }, 'oauth interaction failed');
        if (!res.headersSent) {
          res
            .status(name === 'SessionNotFound' ? 400 : 500)
            .send(
              errorPage(
                'Sign-in failed',
                name === 'SessionNotFound'
                  ? 'This sign-in has expired. Start again from your client.'
                  : 'Something went wrong. Start again from your client.',
              ),
            );
        }
      });
    };
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
    this.#o.audit.record({
      category: 'auth',
      action: 'oauth.revoke',
      status: 'ok',
      userId: principal.userId,
      details: { grantId, owner },
    });
  }
}
