import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MaintenanceRepository } from '../../server/src/features/maintenance/index.ts';
import { openDatabase } from '../../server/src/platform/db/database.ts';
import { tempDir, testLogger } from '../support/config.ts';
import { createTestDatabase } from '../support/database.ts';
import { spawnEntry, spawnServer } from '../support/process.ts';
import { testRedisPrefix } from '../support/redis.ts';
import { hasPostgres, hasRedis } from '../support/services.ts';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

// Each test starts one or two server processes (PGlite opening, migrations) while another
// test file may be building the client beside it: spawnServer waits up to 90 s, so the
// tests get that long too.
const SPAWNING = { timeout: 120_000 };

describe('the server process on the embedded default', SPAWNING, () => {
  it('serves /healthz and /readyz, and keeps its data across a restart', async () => {
    const dataDir = tempDir();
    const first = await spawnServer({ DATA_DIR: dataDir });
    cleanups.push(async () => first.kill('SIGKILL'));
    const health = await fetch(`${first.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
    const ready = await fetch(`${first.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { database: { ok: true } } });
    // The in-process runner's heartbeat runs at start-up; wait until it has been stored.
    await new Promise((r) => setTimeout(r, 500));
    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = await spawnServer({ DATA_DIR: dataDir });
    await new Promise((r) => setTimeout(r, 500));
    second.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    const db = await openDatabase({ kind: 'pglite', dir: path.join(dataDir, 'pglite') }, testLogger());
    const beats = await new MaintenanceRepository(db.db).listHeartbeats();
    await db.close();
    // One row per process that ran: the first run's row survived the restart.
    expect(beats.filter((b) => b.runner === 'in-process')).toHaveLength(2);
  });

  it('stops cleanly within 10 s on SIGTERM while serving requests', async () => {
    const server = await spawnServer({ DATA_DIR: tempDir() });
    cleanups.push(async () => server.kill('SIGKILL'));
    let completed = 0;
    let stop = false;
    const load = Array.from({ length: 8 }, async () => {
      while (!stop) {
        try {
          const r = await fetch(`${server.url}/readyz`);
          await r.arrayBuffer();
          completed++;
        } catch {
          // Refused once the server has stopped listening: expected during shutdown.
          return;
        }
      }
    });
    await new Promise((r) => setTimeout(r, 500));
    const started = Date.now();
    server.kill('SIGTERM');
    const code = await server.exited;
    const took = Date.now() - started;
    stop = true;
    await Promise.all(load);
    expect(code).toBe(0);
    expect(took).toBeLessThan(10_000);
    expect(completed).toBeGreaterThan(0);
    expect(server.output()).toContain('"msg":"stopped"');
  });

  it.each([
    [{ PORT: 'abc' }, /^server: invalid configuration: PORT /m],
    [{ DATABASE_URL: 'mysql://x/y' }, /^server: invalid configuration: DATABASE_URL must be a postgres/m],
    [
      { DATABASE_URL: 'postgres://gw:hunter2@127.0.0.1:1/gw', DATABASE_CONNECT_TIMEOUT_MS: '2000' },
      /^server: cannot connect to PostgreSQL at 127\.0\.0\.1:1\/gw: /m,
    ],
    [{ REDIS_URL: 'redis://127.0.0.1:6379' }, /^server: REDIS_URL needs DATABASE_URL: /m],
  ])('exits 1 with one clear line for %o', async (env, message) => {
    const p = spawnEntry('server/src/main.ts', { PORT: '0', DATA_DIR: tempDir(), ...env });
    expect(await p.exited).toBe(1);
    const out = p.output();
    expect(out).toMatch(message);
    expect(out).not.toMatch(/\n\s+at /); // no stack trace
    expect(out).not.toContain('hunter2');
  });

  it('exits 1 when the port is taken, and the next start still shows the admin key', async () => {
    const first = await spawnServer({ DATA_DIR: tempDir() });
    cleanups.push(async () => first.kill('SIGKILL'));
    const port = new URL(first.url).port;
    const dataDir = tempDir();
    const second = spawnEntry('server/src/main.ts', { PORT: port, DATA_DIR: dataDir });
    expect(await second.exited).toBe(1);
    expect(second.output()).toMatch(
      new RegExp(`^server: cannot listen: port ${port} .* already in use`, 'm'),
    );
    expect(second.output()).not.toContain('An admin API key was generated');
    first.kill('SIGTERM');
    await first.exited;
    // The failed start created the database; the key is made (and shown) only by a start
    // that serves, so nobody is left without a way to sign in.
    const third = await spawnServer({ DATA_DIR: dataDir });
    cleanups.push(async () => third.kill('SIGKILL'));
    await third.waitFor(/An admin API key was generated[^\n]*\n\n\s+(mgw_\S+)/, 10_000);
    third.kill('SIGTERM');
    await third.exited;
  });
});

describe.skipIf(!((await hasPostgres()) && (await hasRedis())))(
  'server and workers with PostgreSQL and Redis',
  SPAWNING,
  () => {
    it('the workers process consumes the heartbeat job the schedule produces, and readiness covers Redis', async () => {
      const db = await createTestDatabase('postgres');
      cleanups.push(() => db.drop());
      const redis = testRedisPrefix();
      cleanups.push(() => redis.clean());
      const env = {
        DATABASE_URL: db.url,
        REDIS_URL: redis.url,
        REDIS_PREFIX: redis.prefix,
        JOBS_HEARTBEAT_INTERVAL_MS: '1000',
        DATA_DIR: tempDir(),
        WORKERS_METRICS_PORT: '0',
      };
      const server = await spawnServer(env);
      cleanups.push(async () => server.kill('SIGKILL'));
      const ready = (await (await fetch(`${server.url}/readyz`)).json()) as {
        checks: Record<string, unknown>;
      };
      expect(ready.checks).toMatchObject({ database: { ok: true }, redis: { ok: true } });

      const workers = spawnEntry('workers/src/main.ts', env);
      cleanups.push(async () => workers.kill('SIGKILL'));
      await workers.waitFor(/workers consuming jobs/);

      const handle = await openDatabase(db.config, testLogger());
      cleanups.push(() => handle.close());
      const repo = new MaintenanceRepository(handle.db);
      const deadline = Date.now() + 15_000;
      let bullmqBeats = 0;
      while (Date.now() < deadline) {
        bullmqBeats = (await repo.listHeartbeats())
          .filter((b) => b.runner === 'bullmq')
          .reduce((n, b) => n + b.beats, 0);
        if (bullmqBeats >= 2) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(bullmqBeats).toBeGreaterThanOrEqual(2);

      workers.kill('SIGTERM');
      server.kill('SIGTERM');
      expect(await workers.exited).toBe(0);
      expect(await server.exited).toBe(0);
    });

    it('the workers process refuses to start without REDIS_URL', async () => {
      const p = spawnEntry('workers/src/main.ts', { DATA_DIR: tempDir() });
      expect(await p.exited).toBe(1);
      expect(p.output()).toMatch(/^workers: REDIS_URL is not set/m);
    });

    it('the workers process refuses the embedded database, which the server alone may open', async () => {
      const p = spawnEntry('workers/src/main.ts', {
        DATA_DIR: tempDir(),
        REDIS_URL: 'redis://127.0.0.1:6379',
      });
      expect(await p.exited).toBe(1);
      expect(p.output()).toMatch(/^workers: DATABASE_URL is not set: /m);
    });

    it('the server exits 1 with one clear line when Redis does not answer', async () => {
      const db = await createTestDatabase('postgres');
      cleanups.push(() => db.drop());
      const p = spawnEntry('server/src/main.ts', {
        PORT: '0',
        DATA_DIR: tempDir(),
        DATABASE_URL: db.url,
        REDIS_URL: 'redis://127.0.0.1:1',
      });
      expect(await p.exited).toBe(1);
      expect(p.output()).toMatch(/^server: cannot connect to Redis at 127\.0\.0\.1:1: /m);
      expect(p.output()).not.toMatch(/\n\s+at /);
    });
  },
);
