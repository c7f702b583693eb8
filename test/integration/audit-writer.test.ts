// The audit writer never drops an event: several writers (replicas) share one chain, a
// database outage is ridden out in memory and, past the buffer bound, on disk, and a
// shutdown during an outage leaves a spool the next start replays.
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuditRepository,
  AuditService,
  AuditTrail,
  buildAuditRecord,
} from '../../server/src/features/audit/index.ts';
import { AuditSpool } from '../../server/src/features/audit/audit.spool.ts';
import type { DatabaseConfig } from '../../server/src/platform/config/config.ts';
import { openDatabase, type DatabaseHandle } from '../../server/src/platform/db/database.ts';
import { tempDir, testLogger } from '../support/config.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { hasPostgres } from '../support/services.ts';

const logger = testLogger();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(25);
  }
}

async function rows<T>(db: DatabaseHandle, query: string): Promise<T[]> {
  return ((await db.db.execute(sql.raw(query))) as unknown as { rows: T[] }).rows;
}

/** Each event's `details.i`, in chain order. */
async function chainOrder(db: DatabaseHandle, action: string): Promise<number[]> {
  return (
    await rows<{ i: string }>(
      db,
      `select details->>'i' as i from audit_events where action = '${action}' order by seq`,
    )
  ).map((r) => Number(r.i));
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function writer(
  db: DatabaseHandle,
  spoolDir: string,
  options: { batchSize?: number; bufferMax?: number } = {},
) {
  return new AuditService(new AuditRepository(db.db), {
    logger,
    batchSize: options.batchSize ?? 50,
    flushIntervalMs: 5,
    bufferMax: options.bufferMax ?? 10_000,
    spoolDir,
    maxRetryMs: 100,
  });
}

const spoolFiles = async (dir: string) =>
  (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.jsonl'));

/**
 * A TCP proxy in front of PostgreSQL that the test can cut (every connection destroyed,
 * nothing listening) and restore on the same port: a database outage as clients see it.
 */
class PostgresProxy {
  readonly #target: { host: string; port: number };
  readonly #sockets = new Set<net.Socket>();
  #server: net.Server | undefined;
  port = 0;

  constructor(targetUrl: string) {
    const u = new URL(targetUrl);
    this.#target = { host: u.hostname, port: Number(u.port || 5432) };
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.#target);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
        s.on('close', () => this.#sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.#server = server;
  }

  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    const closed = new Promise((r) => server?.close(r));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  urlFor(databaseUrl: string): string {
    const u = new URL(databaseUrl);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }
}

describe.runIf(await hasPostgres())('audit writer on PostgreSQL', () => {
  let test: TestDatabase;
  let direct: DatabaseHandle;
  let proxy: PostgresProxy;
  let proxied: DatabaseHandle;
  let trail: AuditTrail;

  beforeAll(async () => {
    test = await createTestDatabase('postgres');
    direct = await openDatabase(test.config, logger);
    trail = new AuditTrail(new AuditRepository(direct.db), { logger });
    proxy = new PostgresProxy(test.url!);
    await proxy.start();
    const config: DatabaseConfig = {
      kind: 'postgres',
      url: proxy.urlFor(test.url!),
      poolMax: 4,
      connectTimeoutMs: 1_000,
    };
    proxied = await openDatabase(config, logger, { migrate: false });
  });
  afterAll(async () => {
    await proxy?.cut();
    await proxied?.close().catch(() => {});
    await direct?.close();
    await test?.drop();
  });

  it('two replicas writing interleaved batches produce one valid chain', async () => {
    const second = await openDatabase(test.config, logger, { migrate: false });
    try {
      const a = writer(direct, path.join(tempDir(), 'spool'), { batchSize: 20 });
      const b = writer(second, path.join(tempDir(), 'spool'), { batchSize: 30 });
      for (let round = 0; round < 30; round++) {
        for (let i = 0; i < 40; i++) {
          a.record({ category: 'mcp', action: 'replica-a', status: 'ok', details: { i: round * 40 + i } });
          b.record({ category: 'mcp', action: 'replica-b', status: 'ok', details: { i: round * 40 + i } });
        }
        await Promise.all([a.flush(), b.flush()]);
      }
      await Promise.all([a.stop(10_000), b.stop(10_000)]);
      expect(await chainOrder(direct, 'replica-a')).toEqual(range(1_200));
      expect(await chainOrder(direct, 'replica-b')).toEqual(range(1_200));
      // Interleaved, not one after the other: the head lock took turns.
      const actions = await rows<{ action: string }>(
        direct,
        `select action from audit_events where action like 'replica-%' order by seq`,
      );
      const switches = actions.filter((r, i) => i > 0 && r.action !== actions[i - 1]!.action).length;
      expect(switches).toBeGreaterThan(10);
      const [fork] = await rows<{ n: string; distinct_prev: string }>(
        direct,
        'select count(*) as n, count(distinct prev_hash) as distinct_prev from audit_events',
      );
      expect(Number(fork!.distinct_prev)).toBe(Number(fork!.n));
      expect(await trail.verify()).toMatchObject({ ok: true, broken: null });
    } finally {
      await second.close();
    }
  });

  it('a database outage during a burst of 2000 events loses none and duplicates none', async () => {
    const w = writer(proxied, path.join(tempDir(), 'spool'));
    let pendingDuringOutage = 0;
    for (let i = 0; i < 2_000; i++) {
      w.record({ category: 'mcp', action: 'burst', status: 'ok', details: { i } });
      if (i === 600) await proxy.cut();
      if (i === 1_400) {
        await sleep(300);
        pendingDuringOutage = w.pending;
        await proxy.start();
      }
      if (i % 50 === 0) await sleep(5);
    }
    expect(pendingDuringOutage).toBeGreaterThan(800);
    await until(async () => {
      await w.flush();
      return w.pending === 0;
    });
    expect(await chainOrder(direct, 'burst')).toEqual(range(2_000));
    expect(await trail.verify()).toMatchObject({ ok: true });
    await w.stop(1_000);
  });

  it('past the buffer bound an outage spills to disk, and the spool is written first once the database is back', async () => {
    const spoolDir = path.join(tempDir(), 'spool');
    const w = writer(proxied, spoolDir, { bufferMax: 100 });
    await proxy.cut();
    for (let i = 0; i < 1_000; i++) {
      w.record({ category: 'mcp', action: 'overflow', status: 'ok', details: { i } });
      if (i % 100 === 0) await sleep(2);
    }
    await until(() => w.pendingDetail.spooled >= 900);
    expect(w.pendingDetail.buffered).toBeLessThanOrEqual(150);
    expect(w.pending).toBe(1_000);
    expect((await spoolFiles(spoolDir)).length).toBeGreaterThan(1);

    await proxy.start();
    await until(async () => {
      await w.flush();
      return w.pending === 0;
    });
    expect(await spoolFiles(spoolDir)).toEqual([]);
    expect(await chainOrder(direct, 'overflow')).toEqual(range(1_000));
    expect(await trail.verify()).toMatchObject({ ok: true });
    await w.stop(1_000);
  });

  it('stop() during an outage spills everything to disk; the next start replays it', async () => {
    const spoolDir = path.join(tempDir(), 'spool');
    const first = writer(proxied, spoolDir);
    await proxy.cut();
    for (let i = 0; i < 300; i++)
      first.record({ category: 'mcp', action: 'shutdown', status: 'ok', details: { i } });
    const started = Date.now();
    await first.stop(5_000);
    // It gave up on the database at its first failure instead of spending the whole budget.
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(first.pendingDetail).toEqual({ buffered: 0, spooled: 300 });
    expect((await spoolFiles(spoolDir)).length).toBeGreaterThan(0);
    // Late events after stop go to disk too.
    first.record({ category: 'mcp', action: 'shutdown', status: 'ok', details: { i: 300 } });
    await until(() => first.pendingDetail.buffered === 0);

    await proxy.start();
    const next = writer(proxied, spoolDir);
    await next.start();
    expect(next.pending).toBe(301);
    await until(async () => {
      await next.flush();
      return next.pending === 0;
    });
    expect(await spoolFiles(spoolDir)).toEqual([]);
    expect(await chainOrder(direct, 'shutdown')).toEqual(range(301));
    expect(await trail.verify()).toMatchObject({ ok: true });
    await next.stop(1_000);
  });
});

describe('audit writer on PGlite', () => {
  it('stop() with the database gone spills to disk; the next start replays it exactly once', async () => {
    const dir = tempDir();
    const config: DatabaseConfig = { kind: 'pglite', dir: path.join(dir, 'pglite') };
    const spoolDir = path.join(dir, 'audit-spool');
    const first = await openDatabase(config, logger);
    const w = writer(first, spoolDir, { batchSize: 40, bufferMax: 100 });
    for (let i = 0; i < 100; i++)
      w.record({ category: 'admin', action: 'pglite', status: 'ok', details: { i } });
    await w.flush();
    await first.close(); // the outage
    for (let i = 100; i < 450; i++)
      w.record({ category: 'admin', action: 'pglite', status: 'ok', details: { i } });
    await w.stop(2_000);
    expect(w.pendingDetail).toEqual({ buffered: 0, spooled: 350 });

    const second = await openDatabase(config, logger);
    try {
      const next = writer(second, spoolDir, { batchSize: 40 });
      await next.start();
      await until(async () => {
        await next.flush();
        return next.pending === 0;
      });
      await next.stop(1_000);
      expect(await chainOrder(second, 'pglite')).toEqual(range(450));
      expect(await spoolFiles(spoolDir)).toEqual([]);
      expect(await new AuditTrail(new AuditRepository(second.db), { logger }).verify()).toMatchObject({
        ok: true,
        checked: 450,
      });
    } finally {
      await second.close();
    }
  }, 120_000); // a file-backed PGlite opened twice

  it('a spool file whose events partly reached the database (crash before removal) is replayed without duplicates', async () => {
    const db = await openDatabase({ kind: 'pglite', dir: 'memory://' }, logger);
    try {
      const repo = new AuditRepository(db.db);
      const records = range(60).map((i) =>
        buildAuditRecord({ category: 'admin', action: 'crash', status: 'ok', details: { i } }),
      );
      // The first 40 were written, then the process died before the file was removed.
      await repo.appendChained(records.slice(0, 40), { dedupe: false });
      const spoolDir = path.join(tempDir(), 'spool');
      await new AuditSpool(spoolDir, logger).write(records, [1, 0]);
      const w = writer(db, spoolDir, { batchSize: 25 });
      await w.start();
      await until(async () => {
        await w.flush();
        return w.pending === 0;
      });
      await w.stop(1_000);
      expect(await chainOrder(db, 'crash')).toEqual(range(60));
      expect(await new AuditTrail(repo, { logger }).verify()).toMatchObject({ ok: true, checked: 60 });
    } finally {
      await db.close();
    }
  });
});
