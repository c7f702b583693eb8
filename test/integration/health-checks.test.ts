// Upstream health checks against real MCP servers (server-everything over Streamable HTTP
// and stdio): the `health.check` job records up/down with latency, GET
// /api/servers/{slug}/health shows it, and the aggregate endpoint leaves out a server that
// is down. Run by the server's in-process runner, and by a real workers process on BullMQ.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpstreamHealthView } from '@gateway/shared';
import { loadConfig } from '../../server/src/platform/config/config.ts';
import { createLogger } from '../../server/src/platform/logging/logger.ts';
import { startServer, type RunningServer } from '../../server/src/runtime.ts';
import { tempDir, testLogger } from '../support/config.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import {
  everythingStdio,
  freePort,
  registerServer,
  remoteHttp,
  startEverythingHttp,
  type EverythingHttp,
} from '../support/mcp.ts';
import { spawnEntry, type SpawnedProcess } from '../support/process.ts';
import { testRedisPrefix } from '../support/redis.ts';
import { ADMIN_TOKEN, api, createUserKey } from '../support/server.ts';
import { hasPostgres, hasRedis } from '../support/services.ts';

const INTERVAL_MS = 500;
const ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');

type Api = ReturnType<typeof api>;

/** Polls the health endpoint until `match` holds; fails with the last view after `timeoutMs`. */
async function waitForHealth(
  client: Api,
  slug: string,
  match: (h: UpstreamHealthView) => boolean,
  timeoutMs = 10_000,
): Promise<UpstreamHealthView> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const res = await client.get(`/api/servers/${slug}/health`);
    last = res.body;
    if (res.status === 200 && match(res.body as UpstreamHealthView)) return res.body as UpstreamHealthView;
    if (Date.now() > deadline)
      throw new Error(`health of ${slug} never matched; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Tool names the aggregate endpoint lists for `key` (a fresh session each time). */
async function aggregateTools(url: string, key: string): Promise<string[]> {
  // A client without roots: server-everything then exits as soon as its session ends.
  const client = new Client({ name: 'health-test', version: '1.0.0' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  try {
    return (await client.listTools()).tools.map((t) => t.name);
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close();
  }
}

/** server-everything over stdio whose users must each supply API_TOKEN: nothing to check it with. */
const needsCredentials = (slug: string) =>
  everythingStdio(slug, {
    credentialFields: [{ name: 'API_TOKEN', kind: 'env', required: true }],
  });

describe('health checks on the in-process job runner', () => {
  const lines: Record<string, unknown>[] = [];
  let server: RunningServer;
  let admin: Api;
  let upstream: EverythingHttp;
  let registeredAt: string;

  beforeAll(async () => {
    // A logger that keeps what it writes, to check status changes are logged.
    const logger = createLogger({
      level: 'info',
      name: 'test',
      destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    });
    upstream = await startEverythingHttp();
    server = await startServer(
      loadConfig({
        NODE_ENV: 'test',
        PORT: '0',
        DATA_DIR: tempDir(),
        ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
        UPSTREAM_ALLOW_LOOPBACK: 'true',
        AUDIT_FLUSH_INTERVAL_MS: '20',
        HEALTH_CHECK_INTERVAL_MS: String(INTERVAL_MS),
        HEALTH_CHECK_TIMEOUT_MS: '5000',
        HEALTH_HISTORY_SIZE: '5',
      }),
      logger,
    );
    admin = api(server.url, ADMIN_TOKEN);
    const created = await registerServer(admin, remoteHttp('ev-http', upstream.url));
    registeredAt = created['capabilitiesAt'] as string;
    await registerServer(admin, everythingStdio('ev-stdio'));
    await registerServer(admin, needsCredentials('ev-creds'));
  });

  afterAll(async () => {
    await server?.stop();
    await upstream?.stop();
  });

  it('reports reachable servers up, with the ping latency and a history', async () => {
    const http = await waitForHealth(admin, 'ev-http', (h) => h.status === 'up');
    expect(http).toMatchObject({ server: 'ev-http', status: 'up', error: null });
    expect(http.latencyMs).toEqual(expect.any(Number));
    expect(http.latencyMs!).toBeGreaterThanOrEqual(0);
    expect(Date.parse(http.checkedAt!)).toBeGreaterThan(Date.now() - 60_000);
    expect(http.history[0]).toMatchObject({ status: 'up', checkedAt: http.checkedAt });
    const stdio = await waitForHealth(admin, 'ev-stdio', (h) => h.status === 'up');
    expect(stdio.latencyMs).toEqual(expect.any(Number));
    // The checks used fresh upstreams: no user's warm stdio process was started or taken.
    expect(server.services.gateway.warmProcesses).toBe(0);
  });

  it('does not check a server that needs per-user credentials, and says why', async () => {
    const creds = await waitForHealth(admin, 'ev-creds', (h) => h.checkedAt !== null);
    expect(creds.status).toBe('unknown');
    expect(creds.latencyMs).toBeNull();
    expect(creds.error).toMatch(/API_TOKEN/);
  });

  it('refreshes the cached capability list and shows the status in the catalog', async () => {
    await waitForHealth(admin, 'ev-http', (h) => h.history.length >= 2);
    const view = await admin.get('/api/servers/ev-http');
    expect(Date.parse(view.body.capabilitiesAt)).toBeGreaterThan(Date.parse(registeredAt));
    expect(view.body.capabilities.tools.map((t: { name: string }) => t.name)).toContain('echo');
    expect(view.body.health).toBe('up');
    const list = await admin.get('/api/servers');
    const bySlug = Object.fromEntries(
      (list.body.servers as { slug: string; health: string }[]).map((s) => [s.slug, s.health]),
    );
    expect(bySlug).toMatchObject({ 'ev-http': 'up', 'ev-stdio': 'up', 'ev-creds': 'unknown' });
  });

  it('shows health only to users who may see the server', async () => {
    const user = await createUserKey(server, 'health-viewer', ['ev-stdio']);
    expect((await user.client.get('/api/servers/ev-stdio/health')).status).toBe(200);
    const hidden = await user.client.get('/api/servers/ev-http/health');
    expect(hidden.status).toBe(404);
    expect(hidden.body.error.code).toBe('not_found');
    expect((await admin.get('/api/servers/no-such-server/health')).status).toBe(404);
    expect((await admin.get('/api/servers/Bad%20Slug/health')).body.error.code).toBe('validation_failed');
    expect((await api(server.url).get('/api/servers/ev-http/health')).status).toBe(401);
  });

  it('marks a killed upstream down within one interval, leaves it out of /mcp, and sees it come back', async () => {
    const before = await aggregateTools(server.url, ADMIN_TOKEN);
    expect(before).toContain('ev-http__echo');
    expect(before).toContain('ev-stdio__echo');

    await upstream.stop();
    const killedAt = Date.now();
    const down = await waitForHealth(admin, 'ev-http', (h) => h.status === 'down');
    // The next scheduled run (at most one interval away) sees it; the check itself fails fast.
    expect(Date.parse(down.checkedAt!) - killedAt).toBeLessThan(INTERVAL_MS + 1_000);
    expect(down.latencyMs).toBeNull();
    expect(down.error).toBeTruthy();
    expect(down.history.map((h) => h.status)).toContain('up');
    const warned = lines.find((l) => l['msg'] === 'upstream ev-http is down');
    // `degraded` when a check before the stop was merely slow (a loaded machine).
    expect(warned).toMatchObject({
      level: 'warn',
      server: 'ev-http',
      from: expect.stringMatching(/^(up|degraded)$/),
      to: 'down',
    });

    const during = await aggregateTools(server.url, ADMIN_TOKEN);
    expect(during.some((n) => n.startsWith('ev-http__'))).toBe(false);
    expect(during).toContain('ev-stdio__echo');
    // The per-server endpoint is still there (it answers with the upstream's failure).
    expect((await admin.get('/api/servers/ev-http')).body.health).toBe('down');

    upstream = await startEverythingHttp(upstream.port);
    await waitForHealth(admin, 'ev-http', (h) => h.status === 'up');
    expect(lines.some((l) => l['msg'] === 'upstream ev-http is up' && l['from'] === 'down')).toBe(true);
    expect(await aggregateTools(server.url, ADMIN_TOKEN)).toContain('ev-http__echo');
  });

  it('keeps only HEALTH_HISTORY_SIZE checks per server', async () => {
    const view = await waitForHealth(admin, 'ev-stdio', (h) => h.history.length >= 5);
    expect(view.history.length).toBe(5);
    const times = view.history.map((h) => Date.parse(h.checkedAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('never logs or records a secret in a check result', () => {
    expect(JSON.stringify(lines)).not.toContain(ADMIN_TOKEN);
  });
});

const multiProcess = (await hasRedis()) && (await hasPostgres());

describe.runIf(multiProcess)('health checks run by the workers process on BullMQ', () => {
  let db: TestDatabase;
  let redis: ReturnType<typeof testRedisPrefix>;
  let server: RunningServer;
  let workers: SpawnedProcess;
  let workersMetrics: string;
  let upstream: EverythingHttp;
  let admin: Api;

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    redis = testRedisPrefix();
    upstream = await startEverythingHttp();
    const env = {
      DATABASE_URL: db.url!,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      DATA_DIR: tempDir(),
      ENCRYPTION_KEY,
      ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
      UPSTREAM_ALLOW_LOOPBACK: 'true',
      HEALTH_CHECK_INTERVAL_MS: String(INTERVAL_MS),
      HEALTH_CHECK_TIMEOUT_MS: '5000',
      WORKERS_METRICS_PORT: String(await freePort()),
    };
    workersMetrics = `http://127.0.0.1:${env.WORKERS_METRICS_PORT}/metrics`;
    // The server only produces jobs here; the checks run in the workers process.
    server = await startServer(
      loadConfig({ NODE_ENV: 'test', PORT: '0', LOG_LEVEL: 'silent', ...env }),
      testLogger(),
    );
    admin = api(server.url, ADMIN_TOKEN);
    workers = spawnEntry('workers/src/main.ts', env);
    await workers.waitFor(/workers consuming jobs/);
    await registerServer(admin, remoteHttp('bq-http', upstream.url));
  });

  afterAll(async () => {
    if (workers) {
      workers.kill('SIGTERM');
      await workers.exited;
    }
    await server?.stop();
    await upstream?.stop();
    await db?.drop();
    await redis?.clean();
  });

  it('records up, then down when the upstream dies, and the server leaves it out of /mcp', async () => {
    expect(server.core.runner.kind).toBe('bullmq');
    const up = await waitForHealth(admin, 'bq-http', (h) => h.status === 'up', 15_000);
    expect(up.latencyMs).toEqual(expect.any(Number));
    expect(await aggregateTools(server.url, ADMIN_TOKEN)).toContain('bq-http__echo');
    // The process that ran the check exports its verdict for Prometheus too.
    expect(await (await fetch(workersMetrics)).text()).toMatch(
      /^gateway_upstream_up\{server="bq-http"\} 1$/m,
    );

    await upstream.stop();
    await waitForHealth(admin, 'bq-http', (h) => h.status === 'down', 15_000);
    // The status is stored before the change is logged: the line may trail the row briefly.
    await expect.poll(() => workers.output(), { timeout: 10_000 }).toMatch(/upstream bq-http is down/);
    const tools = await aggregateTools(server.url, ADMIN_TOKEN);
    expect(tools.some((n) => n.startsWith('bq-http__'))).toBe(false);
  });

  it('the workers process, now running feature services, still stops cleanly on SIGTERM', async () => {
    workers.kill('SIGTERM');
    expect(await workers.exited).toBe(0);
  });
});
