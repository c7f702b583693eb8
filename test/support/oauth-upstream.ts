// An OAuth-protected upstream MCP server and its authorization server, both real and on
// loopback: oidc-provider as the authorization server (dynamic registration, RFC 8707
// resource indicators with short-lived JWT access tokens, rotating refresh tokens, its
// built-in login and consent pages), and an SDK McpServer behind the SDK's
// requireBearerAuth, checking those JWTs against the authorization server's keys.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { Provider, errors as oidcErrors } from 'oidc-provider';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { z } from 'zod';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** What the authorization server did, for assertions. */
export interface AsEvents {
  /** Refresh tokens used up by a rotation (one per successful refresh). */
  refreshTokensConsumed: number;
  /** Successful token endpoint calls by grant type. */
  grants: string[];
  /** The refresh token issued last, and its client. */
  latestRefreshToken: { value: string; clientId: string } | undefined;
  /** Dynamic client registrations. */
  registrations: number;
}

export async function startOAuthUpstream(options: { accessTokenTtlSeconds: number }) {
  // --- the authorization server ---
  const asHttp = createServer();
  const issuer = await listen(asHttp);
  const mcpHttp = createServer();
  const base = await listen(mcpHttp);
  const resource = `${base}/mcp`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'test-key' };
  const provider = new Provider(issuer, {
    jwks: { keys: [jwk as never] },
    cookies: { keys: ['test-upstream-as-cookie-key-0123456789'] },
    scopes: ['openid', 'offline_access', 'mcp'],
    async findAccount(_ctx, id) {
      return { accountId: id, claims: async () => ({ sub: id }) };
    },
    features: {
      devInteractions: { enabled: true },
      registration: { enabled: true },
      // Public clients revoke their own tokens (RFC 7009); the test revokes the gateway's.
      revocation: { enabled: true, allowedPolicy: async () => true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== resource) throw new oidcErrors.InvalidTarget(`unknown resource ${indicator}`);
          return {
            scope: 'mcp',
            audience: resource,
            accessTokenTTL: options.accessTokenTtlSeconds,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    pkce: { required: () => true },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    },
    issueRefreshToken: async () => true,
    rotateRefreshToken: true,
    ttl: {
      AccessToken: options.accessTokenTtlSeconds,
      Interaction: 600,
      Session: 3600,
      Grant: 86_400,
      RefreshToken: 86_400,
      AuthorizationCode: 60,
    },
  });
  const events: AsEvents = {
    refreshTokensConsumed: 0,
    grants: [],
    latestRefreshToken: undefined,
    registrations: 0,
  };
  provider.on('refresh_token.consumed', () => events.refreshTokensConsumed++);
  provider.on('refresh_token.saved', (token) => {
    events.latestRefreshToken = { value: token.jti, clientId: String(token.clientId) };
  });
  provider.on('grant.success', (ctx) => {
    events.grants.push(String(ctx.oidc.params?.['grant_type']));
  });
  provider.on('registration_create.success', () => events.registrations++);
  asHttp.on('request', provider.callback());

  // --- the MCP server, protected by bearer tokens from that authorization server ---
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
  const verifier = {
    async verifyAccessToken(token: string) {
      try {
        const { payload } = await jwtVerify(token, jwks, { issuer, audience: resource });
        return {
          token,
          clientId: String(payload['client_id'] ?? ''),
          scopes: String(payload['scope'] ?? '')
            .split(' ')
            .filter(Boolean),
          expiresAt: payload.exp,
          extra: { sub: payload.sub },
        };
      } catch (err) {
        throw new InvalidTokenError(`token rejected: ${(err as Error).message}`);
      }
    },
  };
  const prmPath = '/.well-known/oauth-protected-resource/mcp';
  const app = express();
  app.use(express.json());
  app.get(prmPath, (_req, res) => {
    // RFC 9728 protected resource metadata: which authorization server issues tokens for us.
    res.json({
      resource,
      authorization_servers: [issuer],
      scopes_supported: ['mcp'],
      bearer_methods_supported: ['header'],
    });
  });
  /** Bearer tokens the MCP endpoint accepted, by `sub` (to prove whose token the gateway sent). */
  const accepted: string[] = [];
  const bearer = requireBearerAuth({ verifier, resourceMetadataUrl: `${base}${prmPath}` });
  app.all('/mcp', bearer, async (req, res) => {
    // Stateless: a server and transport per request (the SDK's stateless pattern).
    const server = new McpServer({ name: 'oauth-upstream', version: '1.0.0' });
    server.registerTool('whoami', { description: 'The token subject' }, (extra) => ({
      content: [{ type: 'text', text: String(extra.authInfo?.extra?.['sub'] ?? '') }],
    }));
    server.registerTool(
      'echo',
      { description: 'Echo', inputSchema: { message: z.string() } },
      ({ message }) => ({ content: [{ type: 'text', text: `Echo: ${message}` }] }),
    );
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    accepted.push(String((req as { auth?: { extra?: { sub?: unknown } } }).auth?.extra?.sub ?? ''));
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  mcpHttp.on('request', app);

  return {
    issuer,
    resource,
    url: resource,
    events,
    accepted,
    /** Revokes a refresh token at the authorization server's revocation endpoint (RFC 7009). */
    async revoke(token: { value: string; clientId: string }) {
      const res = await fetch(`${issuer}/token/revocation`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token: token.value,
          token_type_hint: 'refresh_token',
          client_id: token.clientId,
        }),
      });
      if (!res.ok) throw new Error(`revocation failed: HTTP ${res.status} ${await res.text()}`);
    },
    async close() {
      for (const s of [asHttp, mcpHttp]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    },
  };
}
