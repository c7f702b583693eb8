import { createPublicKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { errors, Provider, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Vault } from '../../platform/crypto/vault.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { UsersRepository } from '../users/index.ts';
import { errorPage } from './auth.pages.ts';
import type { OAuthGrantStatus } from './oauth.grants.ts';
import type { AuthRepository } from './auth.repository.ts';
import { sharedSecret } from './auth.secrets.ts';
import { adapterFactory } from './oauth.adapter.ts';

/** The scope MCP clients ask for; it grants use of the gateway's MCP endpoints. */
export const MCP_SCOPE = 'mcp';

/** The resource URL of an MCP endpoint path (`/mcp` or `/mcp/{slug}`), or undefined. */
export function resourceFor(publicUrl: string, path: string): string | undefined {
  const m = /^\/mcp(?:\/([a-z0-9-]+))?\/?$/.exec(path);
  if (!m) return undefined;
  return m[1] ? `${publicUrl}/mcp/${m[1]}` : `${publicUrl}/mcp`;
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
 * Makes every absolute URL the provider emits (the endpoints in its metadata, a registered
 * client's management URL, redirects) start with PUBLIC_URL. oidc-provider resolves them
 * against Koa's `ctx.href`, which Koa takes from the Host header (or any X-Forwarded-Host
 * once `proxy` is on) and the connection's protocol, or whole from an absolute-form request
 * target: all the client's to choose, and a client following such metadata would send its
 * authorization code and PKCE verifier wherever the request said.
 */
function pinToPublicUrl(provider: Provider, publicUrl: string) {
  const origin = new URL(publicUrl).origin;
  provider.use(async (ctx, next) => {
    // Only the origin of `href` matters (paths come from the provider's routes); the
    // path and query stay the request's, as anything reading `href` expects.
    const { pathname, search } = new URL(ctx.originalUrl, 'http://x');
    Object.defineProperty(ctx.request, 'href', { value: `${origin}${pathname}${search}` });
    await next();
  });
}

/** What the provider is built from: a part of OAuthServerOptions. */
export interface OidcProviderOptions {
  publicUrl: string;
  trustProxy: boolean;
  accessTokenTtlSeconds: number;
  refreshTokenTtlDays: number;
  /** Custom URI schemes allowed as redirect URIs besides https and loopback http (e.g. `cursor`). */
  allowedRedirectSchemes: string[];
  repo: AuthRepository;
  vault: Vault;
  users: UsersRepository;
  logger: Logger;
  /** Whether a token's grant still stands (revocation applies to issued access tokens at once). */
  grants: OAuthGrantStatus;
}

/**
 * oidc-provider configured as the gateway's authorization server for MCP clients (see
 * OAuthServer), with its signing key (made once, sealed, shared by every replica). Returns
 * the provider and the public half of that key, to verify the access tokens it issues.
 */
export async function createOidcProvider(
  o: OidcProviderOptions,
): Promise<{ provider: Provider; publicJwk: JsonWebKey }> {
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
    // OAuth 2.1 for MCP: the authorization code flow (PKCE required below) and nothing else;
    // no implicit or hybrid responses, which hand tokens to the browser's URL. Registration
    // refuses other response and grant types with invalid_client_metadata, since the grant
    // types a client may register are those these response types (and refresh) imply.
    responseTypes: ['code'],
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
    // The grant's id rides in each access token, so revoking the grant stops its tokens.
    extraTokenClaims: (_ctx, token) =>
      token.kind === 'AccessToken' ? { grant_id: token.grantId } : undefined,
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
  pinToPublicUrl(provider, o.publicUrl);
  provider.on('server_error', (_ctx: unknown, err: Error) => o.logger.error({ err }, 'oauth server error'));
  provider.on('grant.revoked', (_ctx: unknown, grantId: string) => {
    o.grants.revoked(grantId);
    o.logger.info({ grantId }, 'oauth grant revoked');
  });
  provider.on('refresh_token.consumed', () => {});
  return { provider, publicJwk: publicJwk as JsonWebKey };
}
