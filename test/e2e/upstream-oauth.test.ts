// The gateway as the OAuth client of an upstream MCP server that requires OAuth: a user's
// first call gets a link to connect their account, the browser flow stores sealed tokens,
// calls then carry that user's token, the refresh job rotates tokens before they expire
// (once per token, under a lock), and a revoked grant asks for consent again.
import { sql } from 'drizzle-orm';
import { Redis } from 'ioredis';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { discoverOAuthServerInfo, refreshAuthorization } from '@modelcontextprotocol/sdk/client/auth.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CredentialsRepository,
  RedisLock,
  UpstreamOAuthService,
} from '../../server/src/features/credentials/index.ts';
import { launchBrowser } from '../support/browser.ts';
import { auditSince, text, waitForAudit } from '../support/mcp.ts';
import { startOAuthUpstream } from '../support/oauth-upstream.ts';
import { ADMIN_TOKEN, createUserKey, grant, useServer } from '../support/server.ts';
import { testLogger } from '../support/config.ts';
import { testRedisPrefix } from '../support/redis.ts';
import { hasChromium, hasRedis } from '../support/services.ts';

const ACCESS_TOKEN_TTL_SECONDS = 2;

/** A connected SDK client, or the JSON-RPC error the gateway answered its initialize with. */
async function connect(url: string, key: string): Promise<Client> {
  const client = new Client({ name: 'upstream-oauth-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    }),
  );
  return client;
}

async function connectError(url: string, key: string): Promise<McpError> {
  const err = await connect(url, key).then(
    async (c) => {
      await c.close();
      throw new Error('expected the gateway to ask for authorization');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(McpError);
  return err as McpError;
}

const withRedis = await hasRedis();

describe.skipIf(!(await hasChromium()))('upstream OAuth: the gateway as OAuth client', () => {
  const state = useServer('pglite', {
    CREDENTIALS_REFRESH_MARGIN_SECONDS: '1',
    CREDENTIALS_REFRESH_INTERVAL_MS: '3600000',
  });
  let upstream: Awaited<ReturnType<typeof startOAuthUpstream>>;
  let browser: Browser;
  let mcpUrl: string;

  beforeAll(async () => {
    upstream = await startOAuthUpstream({ accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS });
    const created = await state.admin.post('/api/servers', {
      slug: 'secured',
      name: 'Secured',
      transport: { type: 'streamable-http', url: upstream.url, headers: {} },
      oauth: { scopes: ['mcp'] },
    });
    expect(created.status).toBe(201);
    // Discovery as the admin, who has not connected yet: the upstream refused, nothing else broke.
    expect(created.body.capabilitiesError).toMatch(/needs your authorization/);
    expect(created.body.oauth).toEqual({ scopes: ['mcp'], clientId: null, clientSecretSet: false });
    await grant(state.admin, 'secured');
    mcpUrl = `${state.server.url}/mcp/secured`;
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await upstream?.close();
  });

  const jobs = () => state.server.core.jobs;
  /** Runs the credentials.refresh job's handler, as a runner would. */
  const runRefreshJob = () =>
    jobs()
      .get('credentials.refresh')!
      .handler(
        { source: 'test' },
        {
          jobId: `test-${Date.now()}`,
          attempt: 1,
          runner: 'in-process',
          logger: testLogger(),
        },
      );

  async function dump(table: string): Promise<Record<string, unknown>[]> {
    const result = await state.server.core.database.db.execute(sql.raw(`select * from ${table}`));
    return (result as unknown as { rows: Record<string, unknown>[] }).rows;
  }

  async function oauthRow(): Promise<Record<string, unknown>> {
    const rows = (await dump('credentials')).filter((r) => r['kind'] === 'oauth' && r['scope'] === 'user');
    expect(rows).toHaveLength(1);
    return rows[0]!;
  }

  /** Waits until the stored access token has expired (the refresh margin in this file is 1 s). */
  async function untilExpired(): Promise<void> {
    const expiresAt = new Date((await oauthRow())['expires_at'] as string).getTime();
    expect(expiresAt).toBeGreaterThan(0);
    const wait = expiresAt - Date.now() + 50;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  /** Submits the page's form and waits for the document it leads to (after any redirects). */
  async function submit(page: Page): Promise<void> {
    await Promise.all([page.waitForEvent('load'), page.click('button[type=submit]')]);
  }

  /** Signs in to the gateway on its local sign-in page (the bootstrap admin). */
  async function gatewaySignIn(page: Page): Promise<void> {
    expect(new URL(page.url()).pathname).toBe('/auth/login');
    await page.fill('input[name=token]', ADMIN_TOKEN);
    await submit(page);
  }

  /** The user's part in the browser: gateway sign-in, then the authorization server's login and consent. */
  async function authorizeInBrowser(page: Page, connectUrl: string, account: string): Promise<void> {
    await page.goto(connectUrl);
    for (let step = 0; step < 12; step++) {
      const here = new URL(page.url());
      if (here.pathname === '/oauth/upstream/callback') return;
      if (here.pathname === '/auth/login') {
        await gatewaySignIn(page);
        continue;
      }
      if (here.pathname === '/oauth/upstream/start') {
        expect(await page.textContent('h1')).toBe('Connect Secured');
        await Promise.all([page.waitForEvent('load'), page.click('a.button')]);
        continue;
      }
      if (here.origin === new URL(upstream.issuer).origin) {
        if (await page.locator('input[name=login]').count()) {
          await page.fill('input[name=login]', account);
          await page.fill('input[name=password]', 'any');
        }
        await submit(page);
        continue;
      }
      throw new Error(`unexpected page ${page.url()}: ${await page.textContent('body')}`);
    }
    throw new Error(`authorization did not come back to the gateway; stuck at ${page.url()}`);
  }

  let adminConnectUrl: string;
  let other: Awaited<ReturnType<typeof createUserKey>>;

  it('answers the first call with a JSON-RPC error naming the server and a connect link', async () => {
    const err = await connectError(mcpUrl, ADMIN_TOKEN);
    expect(err.code).toBe(-32004);
    expect(err.message).toMatch(/Server "secured" needs your authorization/);
    const data = err.data as { server: string; connectUrl: string };
    expect(data.server).toBe('secured');
    expect(data.connectUrl).toMatch(
      new RegExp(`^${state.server.publicUrl}/oauth/upstream/start\\?state=[A-Za-z0-9_-]{20,}$`),
    );
    expect(err.message).toContain(data.connectUrl);
    adminConnectUrl = data.connectUrl;
    // The gateway registered itself once at the authorization server (discovery + this call).
    expect(upstream.events.registrations).toBe(1);
  });

  it('connects the account in the browser and stores only sealed tokens', async () => {
    const since = new Date();
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await authorizeInBrowser(page, adminConnectUrl, 'alice');
      expect(await page.textContent('h1')).toBe('Connected');
      expect(await page.textContent('body')).toContain('Secured');
      // The link is single use.
      await page.goto(adminConnectUrl);
      expect(await page.textContent('.error')).toMatch(/already used/);
    } finally {
      await context.close();
    }
    expect(upstream.events.grants).toContain('authorization_code');
    const row = await oauthRow();
    expect(row['status']).toBe('ok');
    expect(row['thread_id']).toBe('');
    const tables = JSON.stringify([await dump('credentials'), await dump('oauth_pending_authorizations')]);
    expect(tables).not.toContain(upstream.events.latestRefreshToken!.value);
    expect(tables).not.toMatch(/access_token|refresh_token|eyJ[A-Za-z0-9_-]{10,}/);
    await waitForAudit(
      state.admin,
      since,
      (e) => e.action === 'credential.oauth_callback' && e.status === 'ok' && e.serverSlug === 'secured',
      'the callback',
    );
  });

  it('calls the upstream as that user, with their token', async () => {
    const since = new Date();
    const client = await connect(mcpUrl, ADMIN_TOKEN);
    try {
      expect(text(await client.callTool({ name: 'whoami', arguments: {} }))).toBe('alice');
      expect(text(await client.callTool({ name: 'echo', arguments: { message: 'hi' } }))).toBe('Echo: hi');
    } finally {
      await client.close();
    }
    const aggregate = await connect(`${state.server.url}/mcp`, ADMIN_TOKEN);
    try {
      const tools = (await aggregate.listTools()).tools.map((t) => t.name);
      expect(tools).toEqual(expect.arrayContaining(['secured__whoami', 'secured__echo']));
      expect(text(await aggregate.callTool({ name: 'secured__whoami', arguments: {} }))).toBe('alice');
    } finally {
      await aggregate.close();
    }
    const use = await waitForAudit(
      state.admin,
      since,
      (e) => e.action === 'credential.use' && e.serverSlug === 'secured',
      'the token use',
    );
    expect(use.status).toBe('ok');
    expect((use as unknown as { credentialScope: string }).credentialScope).toBe('user');
    const list = await state.admin.get('/api/credentials');
    expect(list.body.credentials).toEqual([
      expect.objectContaining({ serverSlug: 'secured', kind: 'oauth', status: 'ok', fields: [] }),
    ]);
  });

  it('keeps another user out of those tokens', async () => {
    other = await createUserKey(state.server, 'other-user');
    const acceptedBefore = upstream.accepted.length;
    const err = await connectError(mcpUrl, other.key);
    expect(err.code).toBe(-32004);
    const otherLink = (err.data as { connectUrl: string }).connectUrl;
    expect(otherLink).not.toBe(adminConnectUrl);
    expect((await other.client.get('/api/credentials')).body.credentials).toEqual([]);
    // Through the aggregate endpoint: the server is left out, and calling it says how to connect.
    const aggregate = await connect(`${state.server.url}/mcp`, other.key);
    try {
      expect((await aggregate.listTools()).tools.map((t) => t.name)).not.toContain('secured__whoami');
      const call = await aggregate.callTool({ name: 'secured__whoami', arguments: {} }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(call).toBeInstanceOf(McpError);
      expect((call as McpError).code).toBe(-32004);
      expect((call as McpError).data).toMatchObject({ server: 'secured' });
    } finally {
      await aggregate.close();
    }
    // The upstream never accepted a request for them: no token of anyone else's was sent.
    expect(upstream.accepted.length).toBe(acceptedBefore);
    // Their link does not work in someone else's browser session.
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(otherLink);
      await gatewaySignIn(page);
      expect(await page.textContent('.error')).toMatch(/started by another account/);
    } finally {
      await context.close();
    }
    // The REST way for a web UI: the authorization server's URL, for this user.
    const started = await other.client.post('/api/servers/secured/oauth/connect', {});
    expect(started.status).toBe(200);
    expect(started.body.authorizationUrl).toMatch(new RegExp(`^${upstream.issuer}/auth\\?`));
    expect(new URL(started.body.authorizationUrl as string).searchParams.get('resource')).toBe(
      upstream.resource,
    );
  });

  it('refreshes an expired token with the job, storing the rotated refresh token', async () => {
    const before = await oauthRow();
    const consumed = upstream.events.refreshTokensConsumed;
    await untilExpired();
    await runRefreshJob();
    expect(upstream.events.refreshTokensConsumed).toBe(consumed + 1);
    const after = await oauthRow();
    expect(after['ciphertext']).not.toBe(before['ciphertext']);
    expect(new Date(after['expires_at'] as string).getTime()).toBeGreaterThan(Date.now());
    const client = await connect(mcpUrl, ADMIN_TOKEN);
    try {
      expect(text(await client.callTool({ name: 'whoami', arguments: {} }))).toBe('alice');
    } finally {
      await client.close();
    }
    // The rotated refresh token was stored: a second refresh works (a reused one would revoke the grant).
    await untilExpired();
    await runRefreshJob();
    expect(upstream.events.refreshTokensConsumed).toBe(consumed + 2);
    expect((await oauthRow())['status']).toBe('ok');
  });

  it('refreshes on demand within a session when the token expired meanwhile', async () => {
    const client = await connect(mcpUrl, ADMIN_TOKEN);
    try {
      const consumed = upstream.events.refreshTokensConsumed;
      await untilExpired();
      const since = new Date();
      expect(text(await client.callTool({ name: 'echo', arguments: { message: 'later' } }))).toBe(
        'Echo: later',
      );
      expect(upstream.events.refreshTokensConsumed).toBe(consumed + 1);
      // Refreshed by the gateway before the request went out (under the lock), not after a 401.
      await waitForAudit(
        state.admin,
        since,
        (e) =>
          e.action === 'credential.refresh' &&
          e.status === 'ok' &&
          (e.details as { trigger?: string } | null)?.trigger === 'on_demand',
        'the on-demand refresh',
      );
    } finally {
      await client.close();
    }
  });

  it('refreshes once when two runs race (in-process lock)', async () => {
    const consumed = upstream.events.refreshTokensConsumed;
    await untilExpired();
    await Promise.all([runRefreshJob(), runRefreshJob(), runRefreshJob()]);
    expect(upstream.events.refreshTokensConsumed).toBe(consumed + 1);
    expect((await oauthRow())['status']).toBe('ok');
  });

  it.runIf(withRedis)('refreshes once when two processes race (Redis lock)', async () => {
    const prefix = testRedisPrefix();
    const connections = [new Redis(prefix.url), new Redis(prefix.url)];
    try {
      const s = state.server.services;
      // Two services as two processes would build them: own Redis connections, same database.
      const services = connections.map(
        (redis) =>
          new UpstreamOAuthService({
            repo: new CredentialsRepository(state.server.core.database.db),
            vault: s.vault,
            audit: s.audit,
            logger: testLogger(),
            lock: new RedisLock(redis, prefix.prefix),
            fetch,
            serverById: async (id) => (await s.registry.list()).find((x) => x.id === id),
            refreshMarginSeconds: 1,
          }),
      );
      const consumed = upstream.events.refreshTokensConsumed;
      await untilExpired();
      const results = await Promise.all(services.map((svc) => svc.refreshDue()));
      expect(upstream.events.refreshTokensConsumed).toBe(consumed + 1);
      expect(results.map((r) => r.ok).sort()).toEqual([0, 1]);
      expect((await oauthRow())['status']).toBe('ok');
    } finally {
      for (const c of connections) c.disconnect();
      await prefix.clean();
    }
  });

  it('puts the SDK’s own refreshes (after a 401) under the lock: two at once with one refresh token keep the grant', async () => {
    const s = state.server.services;
    const server = (await s.registry.get('secured'))!;
    const row = await oauthRow();
    const { provider } = await s.upstreamOAuth.providerFor(server, { userId: row['user_id'] as string });
    const info = await discoverOAuthServerInfo(upstream.url, { fetchFn: fetch });
    const client = (await s.upstreamOAuth.readClient(server))!;
    // What the SDK's transport does on a 401: refresh with the refresh token it last read.
    const stale = (await provider.tokens())!.refresh_token!;
    const sdkRefresh = () =>
      refreshAuthorization(String(info.authorizationServerUrl), {
        metadata: info.authorizationServerMetadata,
        clientInformation: client,
        refreshToken: stale,
        resource: new URL(upstream.resource),
        fetchFn: provider.serializedRefreshFetch(fetch),
      });
    const consumed = upstream.events.refreshTokensConsumed;
    const results = await Promise.all([sdkRefresh(), sdkRefresh()]);
    // One after the other, each with the newest refresh token: two rotations, no reuse.
    expect(results.every((r) => typeof r.access_token === 'string')).toBe(true);
    expect(upstream.events.refreshTokensConsumed).toBe(consumed + 2);
    expect((await oauthRow())['status']).toBe('ok');
    const mcp = await connect(mcpUrl, ADMIN_TOKEN);
    try {
      expect(text(await mcp.callTool({ name: 'whoami', arguments: {} }))).toBe('alice');
    } finally {
      await mcp.close();
    }
  });

  it('asks for consent again when the authorization server revoked the grant', async () => {
    const since = new Date();
    await upstream.revoke(upstream.events.latestRefreshToken!);
    await untilExpired();
    await runRefreshJob();
    expect((await oauthRow())['status']).toBe('needs_consent');
    const event = await waitForAudit(
      state.admin,
      since,
      (e) => e.action === 'credential.needs_consent' && e.serverSlug === 'secured',
      'the needs-consent event',
    );
    expect(event.error).toMatch(/refresh refused/);
    const list = await state.admin.get('/api/credentials');
    expect(list.body.credentials).toEqual([
      expect.objectContaining({ serverSlug: 'secured', kind: 'oauth', status: 'needs_consent' }),
    ]);
    const err = await connectError(mcpUrl, ADMIN_TOKEN);
    expect(err.code).toBe(-32004);
    // No secret reached the audit trail.
    const trail = JSON.stringify(await auditSince(state.admin, new Date(0)));
    expect(trail).not.toContain(upstream.events.latestRefreshToken!.value);
    expect(trail).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
  });
  it("keeps an admin's static client secret sealed, and refuses OAuth settings that cannot work", async () => {
    const secret = 'static-client-secret-0123456789';
    const created = await state.admin.post('/api/servers', {
      slug: 'static-client',
      name: 'Static client',
      transport: { type: 'streamable-http', url: upstream.url, headers: {} },
      oauth: { clientId: 'gateway-at-crm', clientSecret: secret },
    });
    expect(created.status).toBe(201);
    expect(created.body.oauth).toEqual({ scopes: [], clientId: 'gateway-at-crm', clientSecretSet: true });
    const listed = JSON.stringify((await state.admin.get('/api/servers')).body);
    expect(listed).toContain('gateway-at-crm');
    expect(listed).not.toContain(secret);
    expect(JSON.stringify(await dump('credentials'))).not.toContain(secret);

    const stdio = await state.admin.post('/api/servers', {
      slug: 'stdio-oauth',
      name: 'x',
      transport: { type: 'stdio', command: 'true' },
      oauth: {},
    });
    expect(stdio.status).toBe(400);
    expect(stdio.body.error.issues).toEqual([
      { path: 'body.oauth', message: 'is for remote servers only (not stdio)' },
    ]);
    const orphan = await state.admin.patch('/api/servers/static-client', { oauth: { clientSecret: 'x' } });
    expect(orphan.status).toBe(400);
    expect(orphan.body.error.issues[0].path).toBe('body.oauth.clientSecret');
    // Nothing to connect on a server without OAuth.
    await state.admin.post('/api/servers', {
      slug: 'plain',
      name: 'Plain',
      transport: { type: 'streamable-http', url: upstream.url, headers: {} },
    });
    const plain = await state.admin.post('/api/servers/plain/oauth/connect', {});
    expect(plain.status).toBe(400);
    expect(plain.body.error.message).toMatch(/does not use OAuth/);
  });
});
