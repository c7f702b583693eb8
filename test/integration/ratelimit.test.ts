// Rate limits end to end, counted in memory and in Redis: per address before
// authentication, per user, per user and server, per tool. A refusal is a 429 with
// Retry-After (the REST error body, or a JSON-RPC error on the MCP endpoints), it is audited
// and counted, it never reaches the upstream, and it never affects another user.
import { auditQuerySchema, type AuditEventView } from '@gateway/shared';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  everythingStdio,
  initializeRequest,
  rawMcp,
  registerServer,
  type RawResponse,
} from '../support/mcp.ts';
import { parsePrometheusText, sampleValue } from '../support/prometheus.ts';
import { testRedisPrefix } from '../support/redis.ts';
import { createUserKey, useServer } from '../support/server.ts';
import { hasRedis } from '../support/services.ts';

const RATE_LIMITED_RPC_CODE = -32029;
const redisUp = await hasRedis();

/** A fresh client address per call site (TRUST_PROXY=1 makes the server believe X-Forwarded-For). */
let lastOctet = 0;
const nextIp = () => `203.0.113.${++lastOctet}`;

async function call(
  url: string,
  options: { method?: string; key?: string; ip?: string; body?: unknown } = {},
): Promise<{ status: number; headers: Headers; body: { error: { code: string; message: string } } }> {
  const res = await fetch(url, {
    method: options.method ?? 'GET',
    headers: {
      ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
      ...(options.ip ? { 'x-forwarded-for': options.ip } : {}),
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const text = await res.text();
  const json = res.headers.get('content-type')?.startsWith('application/json');
  return { status: res.status, headers: res.headers, body: json && text ? JSON.parse(text) : undefined };
}

function expectRetryAfter(headers: Headers) {
  const seconds = Number(headers.get('retry-after'));
  expect(Number.isInteger(seconds)).toBe(true);
  expect(seconds).toBeGreaterThanOrEqual(1);
  expect(seconds).toBeLessThanOrEqual(60);
}

function expectRpcRateLimited(res: RawResponse, id: unknown, message: RegExp) {
  expect(res.status).toBe(429);
  expectRetryAfter(res.headers);
  expect(res.json).toMatchObject({ jsonrpc: '2.0', id, error: { code: RATE_LIMITED_RPC_CODE } });
  expect(res.json.error.message).toMatch(message);
  expect(res.json.error.data).toMatchObject({
    scope: expect.any(String),
    retryAfterSeconds: expect.any(Number),
  });
}

async function auditEvents(ctx: ReturnType<typeof useServer>, query: Record<string, string>) {
  // Read in-process: the REST audit API is itself subject to the limits under test.
  await ctx.server.services.audit.flush();
  return (await ctx.server.services.audit.query(auditQuerySchema.parse({ limit: 500, ...query })))
    .events as AuditEventView[];
}

/** The JSON-RPC response with `id` in a JSON or SSE body (an SSE stream may carry notifications first). */
function responseOf(
  res: RawResponse,
  id: number,
): { result?: { content: { text: string }[] }; error?: unknown } {
  const messages = res.text.startsWith('{')
    ? [JSON.parse(res.text) as unknown]
    : res.text
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6)) as unknown);
  const found = messages.find((m) => (m as { id?: unknown }).id === id);
  if (!found) throw new Error(`no response ${id} in ${res.text}`);
  return found as { result?: { content: { text: string }[] } };
}

const toolCall = (id: number, name: string, args: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args },
});

// Redis only where it runs: hasRedis() warns loudly when it does not, and fails under CI.
const stores = [{ store: 'memory', redis: false }, ...(redisUp ? [{ store: 'Redis', redis: true }] : [])];

describe.each(stores)('rate limits in $store', ({ redis }) => {
  const redisPrefix = redis ? testRedisPrefix() : undefined;
  const redisEnv = redisPrefix ? { REDIS_URL: redisPrefix.url, REDIS_PREFIX: redisPrefix.prefix } : {};
  afterAll(async () => {
    await redisPrefix?.clean();
  });

  // One server: tiny limits, and a fresh client address per request (TRUST_PROXY=1 and
  // X-Forwarded-For) wherever the per-address limit is not what is being tested.
  const ctx = useServer('pglite', {
    ...redisEnv,
    TRUST_PROXY: '1',
    // Leaves room for the admin's set-up requests, which come from 127.0.0.1 without X-Forwarded-For.
    RATE_LIMIT_IP_PER_MINUTE: '5',
    RATE_LIMIT_USER_PER_MINUTE: '8',
    RATE_LIMIT_USER_SERVER_PER_MINUTE: '6',
    RATE_LIMIT_TOOLS: JSON.stringify({ every__echo: 2 }),
  });
  let users: Awaited<ReturnType<typeof createUserKey>>[];
  beforeAll(async () => {
    await registerServer(ctx.admin, everythingStdio('every'));
    users = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => createUserKey(ctx.server, `user-${n}`)));
  });

  describe('per address and per user', () => {
    it('refuses the 6th request from one address in a minute, before authentication', async () => {
      const ip = nextIp();
      for (let i = 0; i < 5; i++)
        expect((await call(`${ctx.server.url}/api/servers`, { ip })).status).toBe(401);
      const refused = await call(`${ctx.server.url}/api/servers`, { ip, key: 'anything' });
      expect(refused.status).toBe(429);
      expectRetryAfter(refused.headers);
      expect(refused.body.error).toMatchObject({ code: 'rate_limited' });
      expect(refused.body.error.message).toMatch(/rate limit exceeded \(ip\): at most 5 requests per minute/);
      // MCP endpoints answer the same refusal in JSON-RPC.
      const mcp = await rawMcp(`${ctx.server.url}/mcp`, {
        body: initializeRequest(1),
        headers: { 'x-forwarded-for': ip },
      });
      expectRpcRateLimited(mcp, null, /\(ip\)/);
      // Probes are never limited; another address is not affected.
      expect((await call(`${ctx.server.url}/healthz`, { ip })).status).toBe(200);
      expect((await call(`${ctx.server.url}/readyz`, { ip })).status).toBe(200);
      expect((await call(`${ctx.server.url}/metrics`, { ip })).status).toBe(200);
      expect((await call(`${ctx.server.url}/api/servers`, { ip: nextIp() })).status).toBe(401);

      if (redisPrefix) {
        // The count lives in Redis (shared by replicas), under the deployment's prefix, for a minute.
        const client = new Redis(redisPrefix.url);
        try {
          const key = `${redisPrefix.prefix}:ratelimit:ip:${ip}`;
          expect(await client.get(key)).toBe('7');
          expect(await client.pttl(key)).toBeGreaterThan(0);
          expect(await client.pttl(key)).toBeLessThanOrEqual(60_000);
        } finally {
          client.disconnect();
        }
      }

      const events = await auditEvents(ctx, { action: 'rate_limit' });
      const audited = events.filter((e) => e.ip === ip);
      expect(audited.length).toBe(2);
      expect(audited[0]).toMatchObject({ category: 'auth', status: 'denied', userId: null });
      expect(audited.map((e) => (e.details as { scope: string }).scope)).toEqual(['ip', 'ip']);
    });

    it('audits at most 10 refusals per address and minute, and counts every one', async () => {
      const ip = nextIp();
      const scrape = async () =>
        sampleValue(
          parsePrometheusText(await (await fetch(`${ctx.server.url}/metrics`)).text()),
          'gateway_rate_limit_rejections_total',
          { scope: 'ip' },
        ) ?? 0;
      const before = await scrape();
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++)
        statuses.push((await call(`${ctx.server.url}/api/servers`, { ip })).status);
      expect(statuses.filter((s) => s === 429).length).toBe(15);
      expect((await scrape()) - before).toBe(15);
      const audited = (await auditEvents(ctx, { action: 'rate_limit' })).filter((e) => e.ip === ip);
      expect(audited.length).toBe(10);
    });

    it('refuses a user past their limit on REST and MCP alike, and nobody else', async () => {
      const [a, b] = [users[0]!, users[1]!];
      for (let i = 0; i < 8; i++) {
        expect((await call(`${ctx.server.url}/api/servers`, { key: a.key, ip: nextIp() })).status).toBe(200);
      }
      const refused = await call(`${ctx.server.url}/api/servers`, { key: a.key, ip: nextIp() });
      expect(refused.status).toBe(429);
      expectRetryAfter(refused.headers);
      expect(refused.body.error).toMatchObject({ code: 'rate_limited' });
      expect(refused.body.error.message).toMatch(/\(user\): at most 8 requests per minute per user/);
      const mcp = await rawMcp(`${ctx.server.url}/mcp`, {
        key: a.key,
        body: initializeRequest(7),
        headers: { 'x-forwarded-for': nextIp() },
      });
      expectRpcRateLimited(mcp, 7, /\(user\)/);
      expect(mcp.headers.get('mcp-session-id')).toBeNull();

      // Another user is unaffected.
      expect((await call(`${ctx.server.url}/api/servers`, { key: b.key, ip: nextIp() })).status).toBe(200);

      const events = (await auditEvents(ctx, { action: 'rate_limit', userId: a.user.id })).filter(
        (e) => (e.details as { scope: string }).scope === 'user',
      );
      expect(events.length).toBe(2);
      expect(events[0]).toMatchObject({ category: 'auth', status: 'denied', apiKeyId: expect.any(String) });
      expect(await auditEvents(ctx, { action: 'rate_limit', userId: b.user.id })).toEqual([]);

      const metrics = parsePrometheusText(await (await fetch(`${ctx.server.url}/metrics`)).text());
      expect(sampleValue(metrics, 'gateway_rate_limit_rejections_total', { scope: 'user' })).toBe(2);
      expect(sampleValue(metrics, 'gateway_rate_limit_rejections_total', { scope: 'ip' })).toBe(17);
    });
  });

  describe('per user and server, and per tool', () => {
    /** rawMcp from a fresh address, so the per-address limit stays out of the way. */
    const mcp: typeof rawMcp = (url, options = {}) =>
      rawMcp(url, { ...options, headers: { 'x-forwarded-for': nextIp(), ...options.headers } });

    /** initialize + notifications/initialized on `path`; returns the session id. */
    async function open(path: string, key: string): Promise<string> {
      const init = await mcp(`${ctx.server.url}${path}`, { key, body: initializeRequest(1) });
      expect(init.status).toBe(200);
      const sessionId = init.headers.get('mcp-session-id')!;
      const notified = await mcp(`${ctx.server.url}${path}`, {
        key,
        sessionId,
        body: { jsonrpc: '2.0', method: 'notifications/initialized' },
      });
      expect(notified.status).toBe(202);
      return sessionId;
    }

    it('limits a tool per user on /mcp/{slug} before the call reaches the upstream, then the server', async () => {
      const [a, b] = [users[2]!, users[3]!];
      const url = `${ctx.server.url}/mcp/every`;
      const sessionId = await open('/mcp/every', a.key); // 2 requests to the server
      for (const id of [10, 11]) {
        const ok = await mcp(url, {
          key: a.key,
          sessionId,
          body: toolCall(id, 'echo', { message: `m${id}` }),
        });
        expect(ok.status).toBe(200);
        expect(responseOf(ok, id).result?.content[0]?.text).toContain(`m${id}`);
      }
      const refused = await mcp(url, {
        key: a.key,
        sessionId,
        body: toolCall(12, 'echo', { message: 'm12' }),
      });
      expectRpcRateLimited(
        refused,
        12,
        /\(tool\): at most 2 calls per minute per user of tool echo of server every/,
      );
      // Other tools are not limited per tool, but the server limit (6) still counts every request.
      const sum = await mcp(url, { key: a.key, sessionId, body: toolCall(13, 'get-sum', { a: 1, b: 2 }) });
      expect(sum.status).toBe(200);
      expect(responseOf(sum, 13).result?.content[0]?.text).toContain('3');
      const overServer = await mcp(url, {
        key: a.key,
        sessionId,
        body: toolCall(14, 'get-sum', { a: 1, b: 2 }),
      });
      expectRpcRateLimited(
        overServer,
        14,
        /\(user_server\): at most 6 requests per minute per user to server every/,
      );

      // Another user's budget is their own.
      const otherSession = await open('/mcp/every', b.key);
      const other = await mcp(url, {
        key: b.key,
        sessionId: otherSession,
        body: toolCall(1, 'echo', { message: 'b' }),
      });
      expect(other.status).toBe(200);
      expect(responseOf(other, 1).result?.content[0]?.text).toContain('b');

      // Only the admitted echo calls reached the upstream (and were audited as MCP calls).
      const relayed = await auditEvents(ctx, { action: 'tools/call', userId: a.user.id, tool: 'echo' });
      expect(relayed.filter((e) => e.category === 'mcp').length).toBe(2);
      const denied = await auditEvents(ctx, { action: 'rate_limit', userId: a.user.id });
      expect(
        denied.map((e) => [(e.details as { scope: string }).scope, e.serverSlug, e.toolName]).sort(),
      ).toEqual([
        ['tool', 'every', 'echo'],
        ['user_server', 'every', null],
      ]);
    });

    it('limits {server}__{tool} on the aggregate endpoint', async () => {
      const c = users[4]!;
      const url = `${ctx.server.url}/mcp`;
      const sessionId = await open('/mcp', c.key);
      for (const id of [20, 21]) {
        const ok = await mcp(url, {
          key: c.key,
          sessionId,
          body: toolCall(id, 'every__echo', { message: 'x' }),
        });
        expect(ok.status).toBe(200);
        expect(responseOf(ok, id).result?.content[0]?.text).toContain('x');
      }
      const refused = await mcp(url, {
        key: c.key,
        sessionId,
        body: toolCall(22, 'every__echo', { message: 'x' }),
      });
      expectRpcRateLimited(refused, 22, /\(tool\).*tool echo of server every/);
      await mcp(url, { method: 'DELETE', key: c.key, sessionId });
    });
  });
});
