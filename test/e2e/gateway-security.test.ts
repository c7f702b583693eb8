// What the gateway refuses, end to end: bad or missing credentials, scopes, unknown servers
// and sessions, foreign origins, oversized and malformed bodies. Each refusal is audited and
// never reaches the upstream: the upstream sits behind a recording proxy, and every refused
// message carries a marker that must never show up there.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditSince,
  connectMcp,
  initializeRequest,
  MCP_ACCEPT,
  NO_RATE_LIMITS,
  rawMcp,
  registerServer,
  remoteHttp,
  startEverythingHttp,
  startRecordingProxy,
  text,
  waitForAudit,
  type EverythingHttp,
  type McpConnection,
  type RecordingProxy,
} from '../support/mcp.ts';
import { createUserKey, useServer } from '../support/server.ts';

const ALLOWED_ORIGIN = 'https://app.example';
const ctx = useServer('pglite', { ...NO_RATE_LIMITS, GATEWAY_ALLOWED_ORIGINS: ALLOWED_ORIGIN });
const open: McpConnection[] = [];
let upstream: EverythingHttp;
let proxy: RecordingProxy;
let user: Awaited<ReturnType<typeof createUserKey>>;
let session: McpConnection;

const UPSTREAM_TOKEN = 'user-upstream-token-0123';
const spyUrl = () => `${ctx.server.url}/mcp/spy`;

/** A tools/call that must never reach the upstream; `marker` makes it recognisable there. */
const markedCall = (marker: string, id = 1) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name: 'echo', arguments: { message: marker } },
});

/** An HTTP request with a Host header of our choosing (fetch always sends the URL's own). */
function withHost(
  url: string,
  host: string,
  options: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: options.method ?? 'GET',
        headers: { ...options.headers, host, ...(body ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  upstream = await startEverythingHttp();
  proxy = await startRecordingProxy(upstream.url);
  await registerServer(
    ctx.admin,
    remoteHttp('spy', proxy.url, {
      credentialFields: [{ name: 'X-Upstream-Token', kind: 'header', secret: true, required: false }],
    }),
  );
  user = await createUserKey(ctx.server, 'user');
  const put = await user.client.put('/api/servers/spy/credentials', {
    values: { 'X-Upstream-Token': UPSTREAM_TOKEN },
  });
  expect(put.status).toBe(200);
  session = await connectMcp(spyUrl(), user.key);
  open.push(session);
});

afterAll(async () => {
  await Promise.allSettled(open.splice(0).map((c) => c.close()));
  await proxy?.close();
  await upstream?.stop();
});

/**
 * Proves a refused message went nowhere: no request carrying its marker reached the upstream,
 * and the MCP audit trail shows no tools/call (or initialize by a marked client) served since.
 */
async function expectNotForwarded(marker: string, since: Date) {
  await new Promise((r) => setTimeout(r, 150));
  expect(proxy.requests.filter((r) => r.body.includes(marker)).map((r) => r.body)).toEqual([]);
  const served = (await auditSince(ctx.admin, since, { category: 'mcp', server: 'spy' })).filter(
    (e) => e.status === 'ok' && (e.action === 'tools/call' || (e.clientName ?? '').includes(marker)),
  );
  expect(served.map((e) => `${e.action} ${e.toolName ?? e.clientName ?? ''}`)).toEqual([]);
}

/** Waits for the audit event of a refusal (any status but ok) recorded since `since`. */
function expectRefusalAudited(since: Date) {
  return waitForAudit(ctx.admin, since, (e) => e.status !== 'ok', 'the refusal');
}

describe('authentication', () => {
  it('a request without a key gets 401 with a Bearer challenge, on /mcp/{slug} and /mcp', async () => {
    for (const url of [spyUrl(), `${ctx.server.url}/mcp`]) {
      const since = new Date();
      const path = new URL(url).pathname;
      for (const body of [initializeRequest(1, 'MARKER-nokey-init'), markedCall('MARKER-nokey-call')]) {
        const res = await rawMcp(url, { body });
        expect(res.status, path).toBe(401);
        expect(res.headers.get('www-authenticate'), path).toMatch(/^Bearer /);
      }
      const event = await waitForAudit(
        ctx.admin,
        since,
        (e) => (e.details as { path?: string } | null)?.path === path,
        `auth.reject on ${path}`,
        { action: 'auth.reject' },
      );
      expect(event).toMatchObject({ category: 'auth', status: 'denied' });
      await expectNotForwarded('MARKER-nokey', since);
    }
  });

  it('an unknown, a revoked or an expired key gets 401 with error="invalid_token"', async () => {
    const since = new Date();
    const unknown = `mgw_${randomBytes(32).toString('base64url')}`;

    const revokee = await createUserKey(ctx.server, 'revokee');
    const live = await connectMcp(spyUrl(), revokee.key);
    open.push(live);
    const keys = await ctx.admin.get('/api/keys?all=true');
    const revokeeKey = (keys.body as { keys: { id: string; name: string }[] }).keys.find(
      (k) => k.name === 'revokee-key',
    );
    expect((await ctx.admin.delete(`/api/keys/${revokeeKey!.id}`)).status).toBe(200);

    const expiredUser = await ctx.server.services.users.upsertBySubject({
      subject: 'test|expired',
      displayName: 'expired',
      role: 'user',
    });
    const expired = await ctx.server.services.keys.create(
      { userId: expiredUser.id, displayName: 'expired', role: 'user', via: 'api_key' },
      { name: 'expired-key', expiresAt: new Date(Date.now() - 60_000).toISOString() },
    );

    for (const [what, key] of [
      ['unknown', unknown],
      ['revoked', revokee.key],
      ['expired', expired.key],
    ] as const) {
      const res = await rawMcp(spyUrl(), { key, body: initializeRequest(1, `MARKER-${what}`) });
      expect(res.status, what).toBe(401);
      expect(res.headers.get('www-authenticate'), what).toMatch(/^Bearer .*error="invalid_token"/);
      await waitForAudit(ctx.admin, since, (e) => e.error === what, `auth.reject (${what})`, {
        action: 'auth.reject',
      });
    }
    // A session opened before the revocation is refused from the next message on.
    const err: unknown = await live.client
      .callTool({ name: 'echo', arguments: { message: 'MARKER-revoked-session' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamableHTTPError);
    expect((err as StreamableHTTPError).code).toBe(401);
    await expectNotForwarded('MARKER-revoked', since);
    await expectNotForwarded('MARKER-unknown', since);
    await expectNotForwarded('MARKER-expired', since);
  });
});

describe('authorization and routing', () => {
  it('a key scoped to another server gets 403 on /mcp/{slug}', async () => {
    const scoped = await createUserKey(ctx.server, 'scoped', ['other']);
    const since = new Date();
    const res = await rawMcp(spyUrl(), { key: scoped.key, body: initializeRequest(1, 'MARKER-scope') });
    expect(res.status).toBe(403);
    await expectNotForwarded('MARKER-scope', since);
    await expectRefusalAudited(since);
  });

  it('an unknown server is 404', async () => {
    const since = new Date();
    const res = await rawMcp(`${ctx.server.url}/mcp/no-such-server`, {
      key: user.key,
      body: initializeRequest(1, 'MARKER-404'),
    });
    expect(res.status).toBe(404);
    await expectNotForwarded('MARKER-404', since);
    await expectRefusalAudited(since);
  });

  it('an unknown or ended Mcp-Session-Id is 404 with a JSON-RPC error body', async () => {
    const since = new Date();
    const unknown = await rawMcp(spyUrl(), {
      key: user.key,
      sessionId: randomUUID(),
      body: markedCall('MARKER-nosession', 5),
    });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ jsonrpc: '2.0', error: { code: expect.any(Number) as number } });
    for (const method of ['GET', 'DELETE']) {
      const r = await rawMcp(spyUrl(), { method, key: user.key, sessionId: randomUUID() });
      expect(r.status, method).toBe(404);
    }

    const ending = await connectMcp(spyUrl(), user.key);
    const endedId = ending.transport.sessionId!;
    await ending.transport.terminateSession();
    await ending.client.close();
    const ended = await rawMcp(spyUrl(), {
      key: user.key,
      sessionId: endedId,
      body: markedCall('MARKER-ended', 6),
    });
    expect(ended.status).toBe(404);
    expect(ended.json).toMatchObject({ jsonrpc: '2.0', error: { code: expect.any(Number) as number } });
    await expectNotForwarded('MARKER-nosession', since);
    await expectNotForwarded('MARKER-ended', since);
    await expectRefusalAudited(since);
  });

  it("another user's key cannot use a session", async () => {
    const mallory = await createUserKey(ctx.server, 'mallory');
    const since = new Date();
    const res = await rawMcp(spyUrl(), {
      key: mallory.key,
      sessionId: session.transport.sessionId,
      body: markedCall('MARKER-hijack', 9),
    });
    expect([403, 404]).toContain(res.status);
    await expectNotForwarded('MARKER-hijack', since);
  });

  it("the same user's other key cannot use a session: a session is bound to the key that opened it", async () => {
    // Both keys belong to `user`: one limited to this very server, one unrestricted.
    const scoped = await createUserKey(ctx.server, 'user', ['spy']);
    const other = await createUserKey(ctx.server, 'user');
    expect(scoped.user.id).toBe(user.user.id);
    const since = new Date();
    for (const [key, marker] of [
      [scoped.key, 'MARKER-scoped-ride'],
      [other.key, 'MARKER-other-ride'],
    ] as const) {
      const res = await rawMcp(spyUrl(), {
        key,
        sessionId: session.transport.sessionId,
        body: markedCall(marker, 10),
      });
      // Like an unknown session, so the client re-initializes under its own credential.
      expect(res.status, marker).toBe(404);
      expect(res.json).toMatchObject({ jsonrpc: '2.0', error: { code: expect.any(Number) as number } });
      await expectNotForwarded(marker, since);
    }
    for (const method of ['GET', 'DELETE']) {
      const r = await rawMcp(spyUrl(), { method, key: scoped.key, sessionId: session.transport.sessionId });
      expect(r.status, method).toBe(404);
    }
    await expectRefusalAudited(since);
    // The session itself is untouched and still serves the key that opened it.
    const still = await session.client.callTool({ name: 'echo', arguments: { message: 'still mine' } });
    expect(text(still)).toContain('still mine');
  });

  it('a foreign Origin is refused with 403; an allowed Origin is accepted', async () => {
    const since = new Date();
    const foreign = await rawMcp(spyUrl(), {
      key: user.key,
      headers: { origin: 'https://evil.example' },
      body: initializeRequest(1, 'MARKER-origin'),
    });
    expect(foreign.status).toBe(403);
    await expectNotForwarded('MARKER-origin', since);

    const allowed = await rawMcp(spyUrl(), {
      key: user.key,
      headers: { origin: ALLOWED_ORIGIN },
      body: initializeRequest(1, 'allowed-origin'),
    });
    expect(allowed.status).toBe(200);
    expect(allowed.json).toMatchObject({ id: 1, result: { serverInfo: { name: 'mcp-servers/everything' } } });
    const sessionId = allowed.headers.get('mcp-session-id');
    expect(sessionId).toBeTruthy();
    await rawMcp(spyUrl(), { method: 'DELETE', key: user.key, sessionId: sessionId! });
    await expectRefusalAudited(since);
  });
  it("a DNS-rebinding request (Host and Origin both the attacker's name) is refused with 403 before the Origin check", async () => {
    const since = new Date();
    const port = new URL(ctx.server.url).port;
    const rebound = `rebind.attacker.example:${port}`;
    const headers = {
      authorization: `Bearer ${user.key}`,
      accept: MCP_ACCEPT,
      'mcp-protocol-version': '2025-11-25',
      origin: `http://${rebound}`,
    };
    for (const path of ['/mcp/spy', '/mcp']) {
      const res = await withHost(`${ctx.server.url}${path}`, rebound, {
        method: 'POST',
        headers,
        body: initializeRequest(1, 'MARKER-rebind'),
      });
      expect(res.status, path).toBe(403);
      expect(JSON.parse(res.text)).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 }, id: null });
    }
    // The rest of the app too: REST and the web pages.
    for (const path of ['/api/servers', '/auth/login', '/']) {
      expect((await withHost(`${ctx.server.url}${path}`, rebound, { headers })).status, path).toBe(403);
    }
    await expectNotForwarded('MARKER-rebind', since);
    await expectRefusalAudited(since);
    // A local start answers on both loopback names.
    for (const local of [`localhost:${port}`, `127.0.0.1:${port}`]) {
      const res = await withHost(spyUrl(), local, {
        method: 'POST',
        headers: { ...headers, origin: `http://${local}` },
        body: initializeRequest(1, 'loopback-client'),
      });
      expect(res.status, local).toBe(200);
      expect(res.text).toContain('mcp-servers/everything');
    }
  });
});

describe('message validation', () => {
  it('a body over the size limit is refused with 413', async () => {
    const since = new Date();
    const res = await rawMcp(spyUrl(), {
      key: user.key,
      sessionId: session.transport.sessionId,
      body: markedCall(`MARKER-huge-${'x'.repeat(5 * 1024 * 1024)}`, 11),
    });
    expect(res.status).toBe(413);
    await expectNotForwarded('MARKER-huge', since);
    await expectRefusalAudited(since);
  });

  it('malformed JSON is a JSON-RPC parse error (-32700)', async () => {
    const since = new Date();
    const res = await rawMcp(spyUrl(), {
      key: user.key,
      sessionId: session.transport.sessionId,
      rawBody: JSON.stringify(markedCall('MARKER-parse', 12)).slice(0, -3),
    });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ jsonrpc: '2.0', error: { code: -32700 }, id: null });
    await expectNotForwarded('MARKER-parse', since);
    await expectRefusalAudited(since);
  });

  it('a body that is not JSON-RPC is an invalid request (-32600) with HTTP 400', async () => {
    const since = new Date();
    for (const body of [
      { hello: 'MARKER-invalid-1' },
      { jsonrpc: '1.0', id: 13, method: 'tools/call', params: { message: 'MARKER-invalid-2' } },
      ['MARKER-invalid-3'],
    ]) {
      const res = await rawMcp(spyUrl(), { key: user.key, sessionId: session.transport.sessionId, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json, JSON.stringify(body)).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 } });
    }
    await expectNotForwarded('MARKER-invalid', since);
    // None of this harmed the session.
    await expect(session.client.ping()).resolves.toBeDefined();
    await expectRefusalAudited(since);
  });
  it('deeply nested JSON is refused without internal exception text, and the session survives', async () => {
    const since = new Date();
    const depth = 200_000;
    const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    for (const slugUrl of [spyUrl(), `${ctx.server.url}/mcp`]) {
      const sessionId = slugUrl === spyUrl() ? session.transport.sessionId : undefined;
      for (const rawBody of [
        `{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"echo","arguments":{"message":"MARKER-deep","x":${deep}}}}`,
        `{"jsonrpc":"2.0","id":15,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"MARKER-deep","version":${deep}}}}`,
        deep,
      ]) {
        const res = await rawMcp(slugUrl, { key: user.key, sessionId, rawBody });
        expect(res.status, res.text.slice(0, 300)).toBe(400);
        expect(res.json?.error?.code, res.text.slice(0, 300)).toBeOneOf([-32700, -32600]);
        expect(res.json.error.data).toBeUndefined();
        expect(res.text).not.toMatch(/RangeError|call stack|Error:|at .*\.js/);
      }
    }
    await expectNotForwarded('MARKER-deep', since);
    await expect(session.client.ping()).resolves.toBeDefined();
  });
  it("an upstream's failure is named to the client without its error text, which only the audit trail keeps", async () => {
    // An upstream that fails every request with a body full of internal detail.
    const broken = createServer((req, res) => {
      req.resume();
      req.on('end', () =>
        res.writeHead(500, { 'content-type': 'text/plain' }).end('stack: /srv/app/db.js SECRET-DETAIL'),
      );
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (broken.address() as AddressInfo).port;
      await registerServer(ctx.admin, remoteHttp('broken', `http://127.0.0.1:${port}/mcp`));
      const since = new Date();
      const res = await rawMcp(`${ctx.server.url}/mcp/broken`, {
        key: user.key,
        body: initializeRequest(16, 'broken-client'),
      });
      expect(res.json?.error?.message, res.text.slice(0, 300)).toMatch(/"broken"/);
      expect(res.text).not.toMatch(/SECRET-DETAIL|HTTP 500|Error/);
      const failed = await waitForAudit(
        ctx.admin,
        since,
        (e) => e.serverSlug === 'broken' && e.status !== 'ok' && e.action === 'initialize',
        'the failed initialize',
      );
      expect(failed.error).toMatch(/SECRET-DETAIL/);
    } finally {
      await new Promise((r) => broken.close(r));
    }
  });
});

describe('credentials on the wire', () => {
  it("the client's key never reaches the upstream; the user's upstream credential does", async () => {
    const from = proxy.requests.length;
    const c = await connectMcp(spyUrl(), user.key);
    open.push(c);
    expect(text(await c.client.callTool({ name: 'echo', arguments: { message: 'on the wire' } }))).toBe(
      'Echo: on the wire',
    );
    const seen = proxy.requests.slice(from);
    const call = seen.find((r) => r.body.includes('on the wire'));
    expect(call?.headers['x-upstream-token']).toBe(UPSTREAM_TOKEN);
    expect(call?.headers['authorization']).toBeUndefined();
    for (const r of seen) expect(JSON.stringify(r.headers)).not.toContain(user.key);
  });
});
