// GET /metrics end to end: token enforcement, a strictly valid Prometheus exposition, and
// counters that move when real MCP calls go through the gateway to server-everything (stdio).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectMcp,
  everythingStdio,
  rawMcp,
  registerServer,
  text,
  type McpConnection,
} from '../support/mcp.ts';
import { parsePrometheusText, sampleValue, type MetricFamily } from '../support/prometheus.ts';
import { createUserKey, useServer } from '../support/server.ts';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const ctx = useServer('pglite', { METRICS_TOKEN });
let user: Awaited<ReturnType<typeof createUserKey>>;
const open: McpConnection[] = [];

beforeAll(async () => {
  await registerServer(ctx.admin, everythingStdio('every'));
  user = await createUserKey(ctx.server, 'metrics-user');
});

afterAll(async () => {
  await Promise.allSettled(open.map((c) => c.close()));
});

async function scrape(): Promise<Map<string, MetricFamily>> {
  const res = await fetch(`${ctx.server.url}/metrics`, {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4; charset=utf-8/);
  return parsePrometheusText(await res.text());
}

const value = (f: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}) =>
  sampleValue(f, name, labels) ?? 0;

describe('GET /metrics', () => {
  it('requires the METRICS_TOKEN as a bearer token', async () => {
    const none = await fetch(`${ctx.server.url}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');
    const wrong = await fetch(`${ctx.server.url}/metrics`, {
      headers: { authorization: 'Bearer metrics-token-wrong-0000000000' },
    });
    expect(wrong.status).toBe(401);
    // An API key is not a metrics token either.
    const key = await fetch(`${ctx.server.url}/metrics`, {
      headers: { authorization: `Bearer ${user.key}` },
    });
    expect(key.status).toBe(401);
  });

  it('exposes every gateway metric family with its type, and the Node.js process metrics', async () => {
    const f = await scrape();
    const types = Object.fromEntries([...f.values()].map((m) => [m.name, m.type]));
    expect(types).toMatchObject({
      gateway_http_requests_total: 'counter',
      gateway_http_request_duration_seconds: 'histogram',
      gateway_mcp_requests_total: 'counter',
      gateway_mcp_request_duration_seconds: 'histogram',
      gateway_mcp_sessions_active: 'gauge',
      gateway_stdio_warm_processes: 'gauge',
      gateway_upstream_up: 'gauge',
      gateway_upstream_status: 'gauge',
      gateway_job_queue_jobs: 'gauge',
      gateway_audit_buffered_events: 'gauge',
      gateway_rate_limit_rejections_total: 'counter',
      gateway_token_refresh_total: 'counter',
      process_cpu_user_seconds_total: 'counter',
      nodejs_eventloop_lag_seconds: 'gauge',
    });
    for (const state of ['waiting', 'active', 'failed']) {
      expect(sampleValue(f, 'gateway_job_queue_jobs', { state })).toBeGreaterThanOrEqual(0);
    }
    for (const m of f.values()) expect(m.help, `${m.name} has HELP`).toBeTruthy();
  });

  it('counts MCP requests through the gateway by server, method, tool and status, with latency', async () => {
    const before = await scrape();
    const ok = { server: 'every', method: 'tools/call', tool: 'echo', status: 'ok' };
    const c = await connectMcp(`${ctx.server.url}/mcp/every`, user.key);
    open.push(c);
    expect(text(await c.client.callTool({ name: 'echo', arguments: { message: 'one' } }))).toContain('one');
    expect(text(await c.client.callTool({ name: 'echo', arguments: { message: 'two' } }))).toContain('two');
    await c.client.listTools();

    const during = await scrape();
    expect(
      value(during, 'gateway_mcp_requests_total', ok) - value(before, 'gateway_mcp_requests_total', ok),
    ).toBe(2);
    expect(
      value(during, 'gateway_mcp_request_duration_seconds_count', ok) -
        value(before, 'gateway_mcp_request_duration_seconds_count', ok),
    ).toBe(2);
    expect(value(during, 'gateway_mcp_request_duration_seconds_sum', ok)).toBeGreaterThan(0);
    const list = { server: 'every', method: 'tools/list', tool: '', status: 'ok' };
    expect(value(during, 'gateway_mcp_requests_total', list)).toBeGreaterThanOrEqual(1);
    expect(value(during, 'gateway_mcp_sessions_active')).toBeGreaterThanOrEqual(1);
    // Each message was an HTTP request on the route pattern, never the raw path.
    const posts = { method: 'POST', route: '/mcp/:slug', status: '200' };
    expect(value(during, 'gateway_http_requests_total', posts)).toBeGreaterThan(
      value(before, 'gateway_http_requests_total', posts),
    );
    const routes = new Set(during.get('gateway_http_requests_total')!.samples.map((s) => s.labels['route']));
    expect(routes.has('/mcp/every')).toBe(false);

    // A failing call is counted under its own status.
    const failed = await c.client
      .callTool({ name: 'no-such-tool', arguments: {} })
      .then((r) => (r.isError ? 'tool_error' : 'ok'))
      .catch(() => 'error');
    expect(failed).not.toBe('ok');
    const after = await scrape();
    const failures = after
      .get('gateway_mcp_requests_total')!
      .samples.filter((s) => s.labels['tool'] === 'no-such-tool' && s.labels['status'] !== 'ok');
    expect(failures.map((s) => s.value)).toEqual([1]);

    await c.close();
    open.splice(open.indexOf(c), 1);
    const closed = await scrape();
    expect(value(closed, 'gateway_mcp_sessions_active')).toBeLessThan(
      value(during, 'gateway_mcp_sessions_active'),
    );
  });

  it('counts what the aggregate endpoint answers itself under server="_aggregate"', async () => {
    const before = await scrape();
    const init = await rawMcp(`${ctx.server.url}/mcp`, {
      key: user.key,
      body: {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'm', version: '0' } },
      },
    });
    expect(init.status).toBe(200);
    const labels = { server: '_aggregate', method: 'initialize', status: 'ok' };
    expect(value(await scrape(), 'gateway_mcp_requests_total', labels)).toBe(
      value(before, 'gateway_mcp_requests_total', labels) + 1,
    );
    await rawMcp(`${ctx.server.url}/mcp`, {
      method: 'DELETE',
      key: user.key,
      sessionId: init.headers.get('mcp-session-id') ?? undefined,
    });
  });

  it('shows REST errors under their route pattern and status', async () => {
    await user.client.get('/api/servers/does-not-exist');
    const f = await scrape();
    expect(
      value(f, 'gateway_http_requests_total', { method: 'GET', route: '/api/servers/:slug', status: '404' }),
    ).toBeGreaterThanOrEqual(1);
  });
});
