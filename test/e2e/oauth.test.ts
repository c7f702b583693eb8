import { randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  discoverAuthorizationServerMetadata,
  refreshAuthorization,
  type OAuthClientProvider,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type {
  OAuthClientInformationFull,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { importJWK, SignJWT } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import path from 'node:path';
import { sharedSecret } from '../../server/src/features/auth/index.ts';
import { startServer, type RunningServer } from '../../server/src/runtime.ts';
import { launchBrowser } from '../support/browser.ts';
import { freePort } from '../support/mcp.ts';
import { testConfig, testLogger } from '../support/config.ts';
import { IDP_ACCOUNTS, startIdentityProvider } from '../support/idp.ts';
import { ADMIN_TOKEN, api, grant } from '../support/server.ts';
import { hasChromium } from '../support/services.ts';

const everything = path.join(
  path.dirname(
    createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/package.json'),
  ),
  'dist/index.js',
);

/** The redirect target of a native MCP client: a loopback server that receives the code. */
async function callbackServer() {
  let resolveCode: (code: string) => void = () => {};
  let codePromise = new Promise<string>((r) => (resolveCode = r));
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const code = url.searchParams.get('code');
    res.end(code ? 'You can close this window.' : `error: ${url.searchParams.get('error')}`);
    if (code) resolveCode(code);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`,
    nextCode: () => codePromise,
    reset: () => {
      codePromise = new Promise<string>((r) => (resolveCode = r));
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

/**
 * A request whose Host header and request target are ours to choose (fetch always sends the
 * URL's own host and a path): `target` may be an absolute URL (absolute-form, RFC 9112 3.2.2).
 */
function rawRequest(
  base: string,
  target: string,
  headers: Record<string, string>,
  options: { method?: string; body?: unknown } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const u = new URL(base);
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: target,
        method: options.method ?? 'GET',
        headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> });
          } catch {
            reject(new Error(`${target}: ${res.statusCode} ${text.slice(0, 200)}`));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Every absolute URL in a JSON document (values only, at any depth). */
function urlsIn(value: unknown): string[] {
  if (typeof value === 'string') return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(urlsIn);
  if (value && typeof value === 'object') return Object.values(value).flatMap(urlsIn);
  return [];
}

/** An OAuthClientProvider as an MCP client implements it, driving a real browser for the user's part. */
class TestClientProvider implements OAuthClientProvider {
  info: OAuthClientInformationFull | undefined;
  saved: OAuthTokens | undefined;
  verifier = '';
  authorizationUrl: URL | undefined;
  readonly #redirect: string;
  readonly #onRedirect: (url: URL) => Promise<void>;
  constructor(redirect: string, onRedirect: (url: URL) => Promise<void>) {
    this.#redirect = redirect;
    this.#onRedirect = onRedirect;
  }
  get redirectUrl() {
    return this.#redirect;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'Test MCP Client',
      redirect_uris: [this.#redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationFull) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  async redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
    await this.#onRedirect(url);
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

describe.skipIf(!(await hasChromium()))('OAuth for MCP clients and OIDC web sign-in', () => {
  let gateway: RunningServer;
  let idp: Awaited<ReturnType<typeof startIdentityProvider>>;
  let browser: Browser;
  let callback: Awaited<ReturnType<typeof callbackServer>>;
  let admin: ReturnType<typeof api>;

  beforeAll(async () => {
    const port = await freePort();
    const gatewayUrl = `http://127.0.0.1:${port}`;
    const clientSecret = randomBytes(16).toString('hex');
    idp = await startIdentityProvider({
      clientId: 'gateway',
      clientSecret,
      redirectUri: `${gatewayUrl}/auth/callback`,
    });
    gateway = await startServer(
      testConfig({
        PORT: String(port),
        ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
        OIDC_ISSUER: idp.issuer,
        OIDC_CLIENT_ID: 'gateway',
        OIDC_CLIENT_SECRET: clientSecret,
        OIDC_SCOPES: 'openid profile email groups',
        OIDC_ROLE_MAP: 'admin=gw-admins,auditor=auditors',
        OAUTH_ACCESS_TOKEN_TTL_SECONDS: '120',
      }),
      testLogger(),
    );
    admin = api(gateway.url, ADMIN_TOKEN);
    for (const slug of ['alpha', 'beta']) {
      const res = await admin.post('/api/servers', {
        slug,
        name: slug,
        transport: { type: 'stdio', command: process.execPath, args: [everything, 'stdio'] },
      });
      expect(res.status).toBe(201);
    }
    await grant(admin, 'alpha', { subjectType: 'group', subject: 'staff', tools: ['echo', 'get-sum'] });
    browser = await launchBrowser();
    callback = await callbackServer();
  });

  afterAll(async () => {
    await browser?.close();
    await callback?.close();
    await gateway?.stop();
    await idp?.close();
  });

  /** The user's part of an authorization: IdP sign-in (if needed) and the gateway's consent page. */
  async function authorizeInBrowser(page: Page, url: URL, login: string, options: { deny?: boolean } = {}) {
    await page.goto(url.toString());
    for (let step = 0; step < 10; step++) {
      const here = new URL(page.url());
      if (here.origin === new URL(callback.url).origin) return;
      if (here.origin === new URL(idp.issuer).origin) {
        if (await page.locator('input[name=login]').count()) {
          await page.fill('input[name=login]', login);
          await page.fill('input[name=password]', 'any');
          await Promise.all([page.waitForLoadState(), page.click('button[type=submit]')]);
        } else {
          await Promise.all([page.waitForLoadState(), page.click('button[type=submit]')]);
        }
        continue;
      }
      if (here.pathname.startsWith('/oauth/interaction/')) {
        expect(await page.textContent('h1')).toContain('Test MCP Client');
        await Promise.all([
          page.waitForLoadState(),
          page.click(options.deny ? 'button:has-text("Deny")' : 'button:has-text("Allow")'),
        ]);
        if (options.deny) return;
        if (new URL(page.url()).pathname.startsWith('/oauth/interaction/')) {
          throw new Error(`consent did not complete: ${page.url()}: ${await page.textContent('body')}`);
        }
        continue;
      }
      await page.waitForTimeout(100);
    }
    throw new Error(`authorization did not reach the client; stuck at ${page.url()}`);
  }

  async function connectWithOAuth(login: string, endpoint: string) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const provider = new TestClientProvider(callback.url, (url) => authorizeInBrowser(page, url, login));
    const serverUrl = new URL(`${gateway.url}${endpoint}`);
    callback.reset();
    const first = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
    const client = new Client({ name: 'oauth-test', version: '1' });
    await expect(client.connect(first)).rejects.toThrow(/Unauthorized/);
    await first.finishAuth(await callback.nextCode());
    const transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
    const connected = new Client({ name: 'oauth-test', version: '1' });
    await connected.connect(transport);
    return { client: connected, provider, context, page, serverUrl };
  }

  it('announces protected resource and authorization server metadata', async () => {
    const res = await fetch(`${gateway.url}/mcp/alpha`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate')!;
    expect(challenge).toContain(
      `resource_metadata="${gateway.publicUrl}/.well-known/oauth-protected-resource/mcp/alpha"`,
    );
    expect(challenge).toContain('scope="mcp"');
    const prm = await (await fetch(`${gateway.url}/.well-known/oauth-protected-resource/mcp/alpha`)).json();
    expect(prm).toMatchObject({
      resource: `${gateway.publicUrl}/mcp/alpha`,
      authorization_servers: [gateway.publicUrl],
    });
    const root = (await (await fetch(`${gateway.url}/.well-known/oauth-protected-resource`)).json()) as {
      resource: string;
    };
    expect(root.resource).toBe(`${gateway.publicUrl}/mcp`);
    const meta = await discoverAuthorizationServerMetadata(gateway.publicUrl);
    expect(meta?.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta?.registration_endpoint).toBe(`${gateway.publicUrl}/oauth/register`);
    const rfc8414 = (await (await fetch(`${gateway.url}/.well-known/oauth-authorization-server`)).json()) as {
      issuer: string;
    };
    expect(rfc8414.issuer).toBe(gateway.publicUrl);
  });

  it('builds every URL in its metadata from PUBLIC_URL, whatever Host or request target a request brings', async () => {
    const { port } = new URL(gateway.publicUrl);
    // Allowed names other than PUBLIC_URL's (loopback aliases), a forwarded host from an
    // untrusted hop, and an absolute-form request target naming another host.
    const variants: { host: string; absolute?: string; headers?: Record<string, string> }[] = [
      { host: `localhost:${port}` },
      { host: `[::1]:${port}` },
      {
        host: `localhost:${port}`,
        headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' },
      },
      { host: `localhost:${port}`, absolute: 'http://evil.example' },
    ];
    const documents = [
      '/.well-known/oauth-authorization-server',
      '/.well-known/openid-configuration',
      '/.well-known/oauth-protected-resource',
      '/.well-known/oauth-protected-resource/mcp/alpha',
    ];
    for (const v of variants) {
      for (const doc of documents) {
        const what = `${doc} with Host ${v.host}${v.absolute ? ` as ${v.absolute}${doc}` : ''}${v.headers ? ' and X-Forwarded-*' : ''}`;
        const res = await rawRequest(gateway.url, `${v.absolute ?? ''}${doc}`, {
          host: v.host,
          ...v.headers,
        });
        expect(res.status, what).toBe(200);
        const urls = urlsIn(res.json);
        expect(urls.length, what).toBeGreaterThan(0);
        for (const url of urls)
          expect(
            url.startsWith(`${gateway.publicUrl}/`) || url === gateway.publicUrl,
            `${what}: ${url}`,
          ).toBe(true);
      }
      // The registration response names the client's management URL: from PUBLIC_URL too.
      const registered = await rawRequest(
        gateway.url,
        `${v.absolute ?? ''}/oauth/register`,
        { host: v.host, ...v.headers },
        { method: 'POST', body: { redirect_uris: [callback.url], token_endpoint_auth_method: 'none' } },
      );
      expect(registered.status, v.host).toBe(201);
      const clientUri = String(registered.json['registration_client_uri']);
      expect(clientUri.startsWith(`${gateway.publicUrl}/oauth/`), clientUri).toBe(true);
      for (const url of urlsIn(registered.json).filter((u) => u !== callback.url))
        expect(url.startsWith(`${gateway.publicUrl}/`), `registration: ${url}`).toBe(true);
    }
  });

  it('offers and registers only the authorization code flow (with PKCE) and refresh tokens', async () => {
    for (const doc of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const meta = (await (await fetch(`${gateway.url}${doc}`)).json()) as Record<string, unknown>;
      expect(meta['response_types_supported'], doc).toEqual(['code']);
      expect([...(meta['grant_types_supported'] as string[])].sort(), doc).toEqual([
        'authorization_code',
        'refresh_token',
      ]);
      expect(meta['code_challenge_methods_supported'], doc).toEqual(['S256']);
    }
    const register = (metadata: Record<string, unknown>) =>
      fetch(`${gateway.url}/oauth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          redirect_uris: [callback.url],
          token_endpoint_auth_method: 'none',
          ...metadata,
        }),
      });
    for (const refused of [
      { response_types: ['code id_token'] },
      { response_types: ['id_token'] },
      { response_types: ['code', 'id_token'] },
      { response_types: ['code token'] },
      { grant_types: ['authorization_code', 'implicit'] },
      { grant_types: ['authorization_code', 'client_credentials'] },
    ]) {
      const res = await register(refused);
      expect(res.status, JSON.stringify(refused)).toBe(400);
      expect(((await res.json()) as { error: string }).error, JSON.stringify(refused)).toBe(
        'invalid_client_metadata',
      );
    }
    const ok = await register({
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
    });
    expect(ok.status).toBe(201);
    expect(await ok.json()).toMatchObject({
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
    });
  });

  it('refuses registrations with non-https, non-loopback redirect URIs', async () => {
    const res = await fetch(`${gateway.url}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        redirect_uris: ['http://evil.example.com/cb'],
        token_endpoint_auth_method: 'none',
      }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_redirect_uri');
  });

  it('runs the SDK OAuth flow end to end: sign-in at the IdP, consent, token, tool calls limited by rules', async () => {
    const { client, provider, context } = await connectWithOAuth('bob', '/mcp/alpha');
    try {
      expect(provider.authorizationUrl?.searchParams.get('code_challenge_method')).toBe('S256');
      expect(provider.authorizationUrl?.searchParams.get('resource')).toBe(`${gateway.publicUrl}/mcp/alpha`);
      const tools = await client.listTools();
      // bob is in group staff, granted only echo and get-sum.
      expect(tools.tools.map((t) => t.name).sort()).toEqual(['echo', 'get-sum']);
      const echoed = await client.callTool({ name: 'echo', arguments: { message: 'via oauth' } });
      expect(echoed.content).toEqual([{ type: 'text', text: 'Echo: via oauth' }]);
      await expect(client.callTool({ name: 'get-env', arguments: {} })).rejects.toThrow(/not allowed/);

      // The user was created from the IdP's claims, groups mapped to roles.
      const users = await gateway.services.users.list();
      const bob = users.find((u) => u.email === IDP_ACCOUNTS['bob']!.email)!;
      expect(bob).toMatchObject({ role: 'user', groups: ['staff'], displayName: 'Bob User' });

      // The token is bound to /mcp/alpha: refused on /mcp/beta and on /mcp, and on the REST API.
      const token = provider.saved!.access_token;
      for (const other of ['/mcp/beta', '/mcp', '/api/me']) {
        const res = await fetch(`${gateway.url}${other}`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: {
              protocolVersion: '2025-06-18',
              capabilities: {},
              clientInfo: { name: 'x', version: '1' },
            },
          }),
        });
        expect(res.status, other).toBe(401);
      }

      // Refresh rotates; replaying the old refresh token is refused and revokes the family.
      const metadata = await discoverAuthorizationServerMetadata(gateway.publicUrl);
      const first = provider.saved!.refresh_token!;
      expect(first).toBeTruthy();
      const rotated = await refreshAuthorization(gateway.publicUrl, {
        metadata,
        clientInformation: provider.info!,
        refreshToken: first,
        resource: `${gateway.publicUrl}/mcp/alpha`,
      });
      expect(rotated.refresh_token).toBeTruthy();
      expect(rotated.refresh_token).not.toBe(first);
      const res = await fetch(`${gateway.url}/mcp/alpha`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${rotated.access_token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 'x', version: '1' },
          },
        }),
      });
      expect(res.status).toBe(200);
      await res.body?.cancel();
      await expect(
        refreshAuthorization(gateway.publicUrl, {
          metadata,
          clientInformation: provider.info!,
          refreshToken: first,
          resource: `${gateway.publicUrl}/mcp/alpha`,
        }),
      ).rejects.toThrow(/invalid_grant|grant/i);
      await expect(
        refreshAuthorization(gateway.publicUrl, {
          metadata,
          clientInformation: provider.info!,
          refreshToken: rotated.refresh_token!,
          resource: `${gateway.publicUrl}/mcp/alpha`,
        }),
      ).rejects.toThrow(/invalid_grant|grant/i);
    } finally {
      await client.close();
      await context.close();
    }
  });

  it('refuses expired, tampered and foreign-signed tokens', async () => {
    const jwk = JSON.parse(
      await sharedSecret(gateway.services.authRepo, gateway.services.vault, 'oauth-signing-key'),
    ) as Record<string, string>;
    const key = await importJWK(jwk, 'ES256');
    const users = await gateway.services.users.list();
    const sub = users.find((u) => u.role === 'admin')!.id;
    const base = { scope: 'mcp', client_id: 'x' };
    const sign = (claims: Record<string, unknown>, exp: number, k = key) =>
      new SignJWT({ ...base, ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: jwk['kid']! })
        .setIssuer(gateway.publicUrl)
        .setAudience(`${gateway.publicUrl}/mcp/alpha`)
        .setSubject(sub)
        .setExpirationTime(exp)
        .sign(k);
    const call = (token: string) =>
      fetch(`${gateway.url}/mcp/alpha`, { method: 'GET', headers: { authorization: `Bearer ${token}` } });
    const valid = await sign({}, Math.floor(Date.now() / 1000) + 60);
    expect((await call(valid)).status).toBe(400); // authenticated; GET without a session is a client error
    const expired = await sign({}, Math.floor(Date.now() / 1000) - 60);
    expect((await call(expired)).status).toBe(401);
    const [h, p, sgn] = valid.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: 'someone-else' })).toString('base64url')}.${sgn}`;
    expect((await call(tampered)).status).toBe(401);
    const { generateKeyPair } = await import('jose');
    const other = await generateKeyPair('ES256');
    expect((await call(await sign({}, Math.floor(Date.now() / 1000) + 60, other.privateKey))).status).toBe(
      401,
    );
  });

  it('an MCP session is bound to the OAuth client that opened it: another client or an API key of the same user gets 404', async () => {
    const jwk = JSON.parse(
      await sharedSecret(gateway.services.authRepo, gateway.services.vault, 'oauth-signing-key'),
    ) as Record<string, string>;
    const key = await importJWK(jwk, 'ES256');
    // The owner of ADMIN_TOKEN, so the API key below is the same user's.
    const adminUser = (await admin.get('/api/me')).body as { id: string };
    const tokenFor = (clientId: string) =>
      new SignJWT({ scope: 'mcp', client_id: clientId })
        .setProtectedHeader({ alg: 'ES256', kid: jwk['kid']! })
        .setIssuer(gateway.publicUrl)
        .setAudience(`${gateway.publicUrl}/mcp/alpha`)
        .setSubject(adminUser.id)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + 60)
        .sign(key);
    const post = async (token: string, body: unknown, sessionId?: string) => {
      const res = await fetch(`${gateway.url}/mcp/alpha`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
        },
        body: JSON.stringify(body),
      });
      await res.body?.cancel();
      return res;
    };
    const ping = { jsonrpc: '2.0', id: 2, method: 'ping' };
    const opened = await post(await tokenFor('client-a'), {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    });
    expect(opened.status).toBe(200);
    const sessionId = opened.headers.get('mcp-session-id')!;
    expect(sessionId).toBeTruthy();

    // Same user, another OAuth client; same user, an API key: both as if the session did not exist.
    expect((await post(await tokenFor('client-b'), ping, sessionId)).status).toBe(404);
    expect((await post(ADMIN_TOKEN, ping, sessionId)).status).toBe(404);
    // A new access token of the same client (as after a refresh) keeps using the session.
    expect((await post(await tokenFor('client-a'), ping, sessionId)).status).toBe(200);
  });

  it('a user without a rule sees no server; a denied consent gives the client access_denied', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const provider = new TestClientProvider(callback.url, async (url) => {
      await authorizeInBrowser(page, url, 'carol', { deny: true });
    });
    const first = new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp`), {
      authProvider: provider,
    });
    await expect(new Client({ name: 'deny', version: '1' }).connect(first)).rejects.toThrow(/Unauthorized/);
    await page.waitForURL((u) => u.origin === new URL(callback.url).origin);
    expect(new URL(page.url()).searchParams.get('error')).toBe('access_denied');
    await context.close();

    const carol = await connectWithOAuth('carol', '/mcp');
    try {
      expect((await carol.client.listTools()).tools).toEqual([]);
      const users = await gateway.services.users.list();
      expect(users.find((u) => u.email === IDP_ACCOUNTS['carol']!.email)!.role).toBe('auditor');
    } finally {
      await carol.client.close();
      await carol.context.close();
    }
  });

  it('lists connected clients to their owner, who can revoke them', async () => {
    const alice = await connectWithOAuth('alice', '/mcp/beta');
    try {
      const users = await gateway.services.users.list();
      const aliceUser = users.find((u) => u.email === IDP_ACCOUNTS['alice']!.email)!;
      expect(aliceUser.role).toBe('admin');
      // Sign in to the web UI session of the same browser context and use the REST API with the cookie.
      const me = await alice.page.request.get(`${gateway.url}/api/me`);
      expect(me.status()).toBe(200);
      const meBody = await me.json();
      expect(meBody).toMatchObject({ id: aliceUser.id, via: 'session', role: 'admin' });
      const grants = await alice.page.request.get(`${gateway.url}/api/oauth/grants`);
      const list = (await grants.json()).grants as { id: string; clientName: string }[];
      expect(list.map((g) => g.clientName)).toContain('Test MCP Client');
      // A cookie-authenticated write needs the CSRF header.
      const noCsrf = await alice.page.request.delete(`${gateway.url}/api/oauth/grants/${list[0]!.id}`);
      expect(noCsrf.status()).toBe(403);
      const revoked = await alice.page.request.delete(`${gateway.url}/api/oauth/grants/${list[0]!.id}`, {
        headers: { 'x-csrf-token': meBody.csrfToken },
      });
      expect(revoked.status()).toBe(204);
      const refresh = alice.provider.saved!.refresh_token!;
      const metadata = await discoverAuthorizationServerMetadata(gateway.publicUrl);
      await expect(
        refreshAuthorization(gateway.publicUrl, {
          metadata,
          clientInformation: alice.provider.info!,
          refreshToken: refresh,
        }),
      ).rejects.toThrow();
      // Another user cannot see or revoke alice's grants.
      const res = await admin.get('/api/oauth/grants?all=true');
      expect(res.status).toBe(200);
    } finally {
      await alice.client.close();
      await alice.context.close();
    }
  });

  it('revoking a grant stops its access tokens at once: through the grants API, and by revoking the refresh token', async () => {
    const initialize = (token: string) =>
      fetch(`${gateway.url}/mcp/alpha`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 'x', version: '1' },
          },
        }),
      });
    const expectServed = async (token: string) => {
      const res = await initialize(token);
      expect(res.status).toBe(200);
      await res.body?.cancel();
    };
    const expectRefused = async (token: string) => {
      const res = await initialize(token);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
      await res.body?.cancel();
    };

    const viaApi = await connectWithOAuth('bob', '/mcp/alpha');
    try {
      const token = viaApi.provider.saved!.access_token;
      await expectServed(token);
      const listed = await admin.get('/api/oauth/grants?all=true');
      const grantOfClient = (listed.body.grants as { id: string; clientId: string }[]).find(
        (g) => g.clientId === viaApi.provider.info!.client_id,
      );
      expect(grantOfClient).toBeDefined();
      const revoked = await admin.delete(`/api/oauth/grants/${grantOfClient!.id}`);
      expect(revoked.status).toBe(204);
      // Minutes before the token would expire, it no longer opens anything.
      const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number };
      expect(claims.exp * 1000).toBeGreaterThan(Date.now() + 60_000);
      await expectRefused(token);
      await expect(
        viaApi.client.callTool({ name: 'echo', arguments: { message: 'after revoke' } }),
      ).rejects.toThrow();
    } finally {
      await viaApi.client.close();
      await viaApi.context.close();
    }

    const viaRevocation = await connectWithOAuth('bob', '/mcp/alpha');
    try {
      const token = viaRevocation.provider.saved!.access_token;
      await expectServed(token);
      // RFC 7009 revocation of the refresh token revokes the grant (oidc-provider), and with it the token.
      const res = await fetch(`${gateway.publicUrl}/oauth/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token: viaRevocation.provider.saved!.refresh_token!,
          token_type_hint: 'refresh_token',
          client_id: viaRevocation.provider.info!.client_id,
        }),
      });
      expect(res.status).toBe(200);
      await expectRefused(token);
    } finally {
      await viaRevocation.client.close();
      await viaRevocation.context.close();
    }
  });

  it('signs out with a CSRF-protected form post', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${gateway.url}/auth/login?returnTo=/api/me`);
    await page.fill('input[name=login]', 'bob');
    await page.fill('input[name=password]', 'x');
    await Promise.all([page.waitForLoadState(), page.click('button[type=submit]')]);
    if (new URL(page.url()).origin === idp.issuer)
      await Promise.all([page.waitForLoadState(), page.click('button[type=submit]')]);
    await page.waitForURL(`${gateway.url}/api/me`);
    const me = JSON.parse((await page.textContent('body'))!);
    expect(me.displayName).toBe('Bob User');
    const forged = await page.request.post(`${gateway.url}/auth/logout`, { form: { _csrf: 'wrong' } });
    expect(forged.status()).toBe(403);
    const out = await page.request.post(`${gateway.url}/auth/logout`, {
      form: { _csrf: me.csrfToken },
      maxRedirects: 0,
    });
    expect(out.status()).toBe(303);
    expect((await page.request.get(`${gateway.url}/api/me`)).status()).toBe(401);
    await context.close();
  });
});
