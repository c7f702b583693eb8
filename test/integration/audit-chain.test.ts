// The audit trail's hash chain: a clean chain verifies, any edit or deletion is found at the
// right event, retention keeps the chain verifiable, and the verify command and admin API
// report the same.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AuditChainBrokenError,
  AuditRepository,
  AuditService,
  AuditTrail,
  buildAuditRecord,
  type AuditEventInput,
} from '../../server/src/features/audit/index.ts';
import { openDatabase, type DatabaseHandle } from '../../server/src/platform/db/database.ts';
import { tempDir, testLogger } from '../support/config.ts';
import { createTestDatabase, engines, type TestDatabase } from '../support/database.ts';
import { ROOT } from '../support/process.ts';
import { api, createUserKey, useServer } from '../support/server.ts';

const logger = testLogger();
const DAY = 86_400_000;

async function exec<T = Record<string, unknown>>(db: DatabaseHandle, query: string): Promise<T[]> {
  return ((await db.db.execute(sql.raw(query))) as unknown as { rows: T[] }).rows;
}

/** Empties the trail (between tests on one database). */
async function reset(db: DatabaseHandle) {
  await exec(db, 'delete from audit_events');
  await exec(db, 'delete from audit_checkpoints');
  await exec(db, 'delete from audit_exports');
  await exec(db, `update audit_chain_head set last_seq = 0, last_hash = '${'0'.repeat(64)}'`);
}

const seqs = async (db: DatabaseHandle) =>
  (await exec<{ seq: string | number }>(db, 'select seq from audit_events order by seq')).map((r) =>
    Number(r.seq),
  );

/** Events with awkward values: every one must hash the same before the insert and after reading it back. */
function awkward(i: number): AuditEventInput {
  return {
    category: i % 3 ? 'mcp' : 'admin',
    action: i % 2 ? 'tools/call' : 'server.update',
    status: i % 5 ? 'ok' : 'error',
    userId: i % 4 ? '0F8FAD5B-D9CB-469F-A165-70867728950E' : null,
    serverSlug: 'alpha',
    toolName: `tool-${i}`,
    latencyMs: i * 1.7,
    requestBytes: 1e12,
    ip: '127.0.0.1',
    error: i % 5 ? null : 'boom\u0000with nul',
    details: {
      z: 1,
      a: { y: [1, 2, { c: 'ü', b: null }], x: 'line\nbreak "quoted"' },
      big: 1e21,
      small: 1e-7,
      fraction: 0.1 + 0.2,
      negativeZero: -0,
      lone: 'half \ud800 surrogate',
      emoji: '🙂',
      undef: undefined,
      nan: Number.NaN,
      nested: { '': 'empty key', 'k\u0000ey': 'nul key' },
      i,
    },
  };
}

describe.each(await engines())('audit hash chain on %s', (engine) => {
  let test: TestDatabase;
  let db: DatabaseHandle;
  let repo: AuditRepository;
  let trail: AuditTrail;

  beforeAll(async () => {
    test = await createTestDatabase(engine);
    db = await openDatabase(test.config, logger);
    repo = new AuditRepository(db.db);
    trail = new AuditTrail(repo, { logger, retentionDays: 365 });
  });
  afterAll(async () => {
    await db?.close();
    await test?.drop();
  });
  beforeEach(() => reset(db));

  async function writeEvents(count: number, make: (i: number) => AuditEventInput = awkward) {
    const writer = new AuditService(repo, {
      logger,
      batchSize: 37,
      flushIntervalMs: 10,
      bufferMax: 10_000,
      spoolDir: path.join(tempDir(), 'spool'),
    });
    for (let i = 0; i < count; i++) writer.record(make(i));
    await writer.stop(10_000);
    expect(writer.pending).toBe(0);
    return seqs(db);
  }

  it('a clean chain verifies, awkward values included', async () => {
    const written = await writeEvents(300);
    expect(written).toHaveLength(300);
    const report = await trail.verify();
    expect(report).toMatchObject({ ok: true, checked: 300, lastSeq: written.at(-1), broken: null });
    expect(report.start).toMatchObject({ kind: 'genesis', afterSeq: 0 });
    expect(report.head).toEqual({ seq: written.at(-1), hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('an empty trail verifies', async () => {
    expect(await trail.verify()).toMatchObject({ ok: true, checked: 0, lastSeq: null, broken: null });
  });

  it('changing one event (details or action) is reported at exactly that seq', async () => {
    const written = await writeEvents(120);
    const target = written[57]!;
    const [row] = await exec<{ id: string; hash: string }>(
      db,
      `select id, hash from audit_events where seq = ${target}`,
    );
    await exec(
      db,
      `update audit_events set details = '{"arguments":{"path":"/etc/shadow"}}' where seq = ${target}`,
    );
    const report = await trail.verify();
    expect(report.ok).toBe(false);
    expect(report.checked).toBe(57);
    expect(report.broken).toMatchObject({
      seq: target,
      id: row!.id,
      reason: 'hash_mismatch',
      storedHash: row!.hash,
    });
    expect(report.broken!.expectedHash).not.toBe(row!.hash);

    await reset(db);
    const again = await writeEvents(40);
    await exec(db, `update audit_events set action = 'tools/list' where seq = ${again[3]}`);
    expect((await trail.verify()).broken).toMatchObject({ seq: again[3], reason: 'hash_mismatch' });
  });

  it('deleting an event in the middle is reported at the event after it', async () => {
    const written = await writeEvents(60);
    await exec(db, `delete from audit_events where seq = ${written[30]}`);
    const report = await trail.verify();
    expect(report.ok).toBe(false);
    expect(report.broken).toMatchObject({ seq: written[31], reason: 'prev_hash_mismatch' });
  });

  it('deleting the newest events is reported against the chain head', async () => {
    const written = await writeEvents(20);
    await exec(db, `delete from audit_events where seq >= ${written[18]}`);
    const report = await trail.verify();
    expect(report.broken).toMatchObject({ seq: written[19], id: null, reason: 'head_mismatch' });
  });

  it('retention deletes old events in batches, records a checkpoint, and verification still passes', async () => {
    const now = Date.now();
    const old = Array.from({ length: 2_300 }, (_, i) =>
      buildAuditRecord(
        { category: 'mcp', action: 'tools/call', status: 'ok', details: { i } },
        new Date(now - 400 * DAY + i),
      ),
    );
    for (let i = 0; i < old.length; i += 500)
      await repo.appendChained(old.slice(i, i + 500), { dedupe: false });
    // An old event recorded after a recent one stays: only a prefix of the chain may go.
    await repo.appendChained(
      [
        buildAuditRecord({ category: 'admin', action: 'recent', status: 'ok' }, new Date(now - DAY)),
        buildAuditRecord({ category: 'admin', action: 'late-old', status: 'ok' }, new Date(now - 500 * DAY)),
      ],
      { dedupe: false },
    );
    const all = await seqs(db);
    const result = await trail.applyRetention(new Date(now));
    expect(result).toEqual({ deleted: 2_300, checkpointSeq: all[2_299] });
    const left = await exec<{ action: string }>(db, 'select action from audit_events order by seq');
    // Retention records itself in the trail.
    expect(left.map((r) => r.action)).toEqual(['recent', 'late-old', 'audit.retention']);
    const checkpoints = await exec<{ kind: string; up_to_seq: string; deleted_count: string }>(
      db,
      'select kind, up_to_seq, deleted_count from audit_checkpoints',
    );
    expect(checkpoints.map((c) => [c.kind, Number(c.up_to_seq), Number(c.deleted_count)])).toEqual([
      ['retention', all[2_299], 2_300],
    ]);
    const report = await trail.verify();
    expect(report).toMatchObject({
      ok: true,
      checked: 3,
      start: { kind: 'retention', afterSeq: all[2_299] },
    });

    // New events chain on, and a second run with nothing to delete changes nothing.
    await writeEvents(10);
    expect(await trail.applyRetention(new Date(now))).toEqual({ deleted: 0, checkpointSeq: null });
    expect(await trail.verify()).toMatchObject({ ok: true, checked: 13 });
  });

  it('retention refuses to delete a range with a broken link, and deletes nothing', async () => {
    const old = Array.from({ length: 10 }, (_, i) =>
      buildAuditRecord(
        { category: 'mcp', action: 'tools/call', status: 'ok' },
        new Date(Date.now() - 400 * DAY + i),
      ),
    );
    await repo.appendChained(old, { dedupe: false });
    const written = await seqs(db);
    await exec(db, `update audit_events set status = 'denied' where seq = ${written[4]}`);
    await expect(trail.applyRetention()).rejects.toThrow(AuditChainBrokenError);
    await expect(trail.applyRetention()).rejects.toThrow(`seq ${written[4]}`);
    expect(await seqs(db)).toEqual(written);
  });

  it('keeps everything with AUDIT_RETENTION_DAYS=0', async () => {
    await repo.appendChained(
      [buildAuditRecord({ category: 'mcp', action: 'x', status: 'ok' }, new Date(Date.now() - 9_000 * DAY))],
      { dedupe: false },
    );
    const forever = new AuditTrail(repo, { logger, retentionDays: 0 });
    expect(await forever.applyRetention()).toEqual({ deleted: 0, checkpointSeq: null });
    expect(await seqs(db)).toHaveLength(1);
  });

  it('two writers in one process chain one after another without a fork', async () => {
    const spool = () => path.join(tempDir(), 'spool');
    const a = new AuditService(repo, {
      logger,
      batchSize: 7,
      flushIntervalMs: 5,
      bufferMax: 10_000,
      spoolDir: spool(),
    });
    const b = new AuditService(repo, {
      logger,
      batchSize: 11,
      flushIntervalMs: 5,
      bufferMax: 10_000,
      spoolDir: spool(),
    });
    for (let i = 0; i < 200; i++) {
      a.record({ category: 'mcp', action: 'a', status: 'ok', details: { i } });
      b.record({ category: 'mcp', action: 'b', status: 'ok', details: { i } });
      if (i % 20 === 0) await Promise.all([a.flush(), b.flush()]);
    }
    await Promise.all([a.stop(10_000), b.stop(10_000)]);
    expect(await trail.verify()).toMatchObject({ ok: true, checked: 400 });
  });
});

describe.each(await engines())('npm run audit:verify on %s', (engine) => {
  let test: TestDatabase;
  let dataDir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dataDir = tempDir();
    test = await createTestDatabase(engine, engine === 'pglite' ? path.join(dataDir, 'pglite') : undefined);
    env = { DATA_DIR: dataDir, ...(test.url ? { DATABASE_URL: test.url } : {}) };
  });
  afterAll(() => test?.drop());

  async function withDb<T>(fn: (db: DatabaseHandle, repo: AuditRepository) => Promise<T>): Promise<T> {
    const db = await openDatabase(test.config, logger);
    try {
      return await fn(db, new AuditRepository(db.db));
    } finally {
      // PGlite belongs to one process: the command can open it only once this one let go.
      await db.close();
    }
  }

  /** Runs the command the way `npm run audit:verify -- <args>` does. */
  function run(...args: string[]): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [path.join(ROOT, 'scripts/audit-verify.ts'), ...args],
        // eslint-disable-next-line no-restricted-properties -- tests read their own environment
        { cwd: ROOT, env: { PATH: process.env['PATH'], NODE_ENV: 'test', ...env } },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, output: stdout + stderr }),
      );
    });
  }

  it('reports OK with the count, then the first broken link with exit code 1', async () => {
    const written = await withDb(async (db, repo) => {
      await repo.appendChained(
        Array.from({ length: 25 }, (_, i) =>
          buildAuditRecord({ category: 'auth', action: 'auth.reject', status: 'denied', details: { i } }),
        ),
        { dedupe: false },
      );
      return seqs(db);
    });
    const ok = await run();
    expect(ok.output).toContain('OK: 25 audit events verified');
    expect(ok.code).toBe(0);

    await withDb((db) => exec(db, `update audit_events set details = '{"i":999}' where seq = ${written[9]}`));
    const bad = await run();
    expect(bad.code).toBe(1);
    expect(bad.output).toContain(`broken at seq ${written[9]}`);
    expect(bad.output).toMatch(/expected hash: +[0-9a-f]{64}/);
  }, 120_000); // four openings of a file-backed PGlite and two processes

  it('--help says to stop the server on PGlite or use the admin API', async () => {
    const help = await run('--help');
    expect(help.code).toBe(0);
    expect(help.output).toContain('while the server is');
    expect(help.output).toContain('POST');
    expect(help.output).toContain('/api/audit/verify');
    expect((await run('--bogus')).code).toBe(2);
  });
});

describe.each(await engines())('POST /api/audit/verify on %s', (engine) => {
  const ctx = useServer(engine);

  it('admins get the report; the check itself is recorded; others are refused', async () => {
    // Something to verify: refusals are audited.
    expect((await api(ctx.server.url).get('/api/servers')).status).toBe(401);
    const { client } = await createUserKey(ctx.server, 'verifier');
    expect((await client.post('/api/audit/verify')).status).toBe(403);
    await ctx.server.services.audit.flush();
    const res = await ctx.admin.post('/api/audit/verify');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, broken: null });
    expect(res.body.checked).toBeGreaterThan(0);
    await ctx.server.services.audit.flush();
    const recorded = await ctx.admin.get('/api/audit?action=audit.verify');
    expect(recorded.body.events[0]).toMatchObject({ category: 'admin', status: 'ok' });

    const db = ctx.server.core.database;
    const [row] = await exec<{ seq: string }>(db, 'select seq from audit_events order by seq limit 1');
    await exec(db, `update audit_events set ip = '10.6.6.6' where seq = ${row!.seq}`);
    const broken = await ctx.admin.post('/api/audit/verify');
    expect(broken.body).toMatchObject({
      ok: false,
      broken: { seq: Number(row!.seq), reason: 'hash_mismatch' },
    });
  });
});
