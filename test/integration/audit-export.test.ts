// Audit export: streamed in seq order with bounded memory (100k events), correct JSONL and
// CSV, same filters as the listing, admins and auditors only; and the export job writes
// the events since its last run to a file, which retention then respects.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditRepository, AuditTrail, buildAuditRecord } from '../../server/src/features/audit/index.ts';
import { openDatabase, type DatabaseHandle } from '../../server/src/platform/db/database.ts';
import { tempDir, testLogger } from '../support/config.ts';
import { createTestDatabase, engines, type TestDatabase } from '../support/database.ts';
import { ADMIN_TOKEN, createUserKey, useServer } from '../support/server.ts';

const logger = testLogger();
const DAY = 86_400_000;

// A full collection on demand, so the test measures memory the export keeps, not garbage.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** RFC 4180 rows of a whole CSV text. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  return rows;
}

/**
 * Reads a streamed response without keeping it: counts bytes and records (JSONL lines, or
 * CSV rows: CRLFs outside quotes), keeps the first and last 4 KiB, and samples the heap
 * after a full collection while the stream flows.
 */
async function consume(res: Response, format: 'jsonl' | 'csv') {
  gc();
  const baseline = process.memoryUsage().heapUsed;
  let peak = 0;
  let lastSample = 0;
  let bytes = 0;
  let records = 0;
  let quoted = false;
  let prev = 0;
  let head = '';
  let tail = '';
  const decoder = new TextDecoder();
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    const text = decoder.decode(value, { stream: true });
    if (head.length < 4096) head += text.slice(0, 4096 - head.length);
    tail = (tail + text).slice(-4096);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (format === 'jsonl') {
        if (c === 10) records++;
      } else if (c === 34) quoted = !quoted;
      else if (c === 10 && prev === 13 && !quoted) records++;
      prev = c;
    }
    if (Date.now() - lastSample > 500) {
      lastSample = Date.now();
      gc();
      peak = Math.max(peak, process.memoryUsage().heapUsed - baseline);
    }
  }
  return { bytes, records, head, tail, peakHeapGrowth: peak };
}

describe.each(await engines())('audit export on %s', (engine) => {
  const ctx = useServer(engine);
  const TOTAL = 100_000;
  // Generous timeouts: 100k events take seconds, but a loaded CI machine may take longer.
  let firstSeq = 0;

  const get = (query: string, key = ADMIN_TOKEN) =>
    fetch(`${ctx.server.url}/api/audit/export?${query}`, { headers: { authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    const db = ctx.server.core.database.db;
    // Fast bulk insert: the export does not check hashes, so these carry placeholders.
    await db.execute(sql`
      insert into audit_events (id, at, category, action, status, server_slug, tool_name, latency_ms, details, prev_hash, hash)
      select gen_random_uuid(), now() - interval '1 hour', 'mcp', 'tools/call', 'ok',
        case when g % 10 = 0 then 'beta' else 'alpha' end, 'echo', g % 1000,
        jsonb_build_object('i', g, 'pad', repeat('x', 400)), md5(g::text) || md5(g::text), md5(g::text) || md5(g::text)
      from generate_series(1, ${TOTAL}) g`);
    // An export reads up to the chain head; move it past the bulk rows (the row lock waits for any writer).
    await db.execute(
      sql`update audit_chain_head set last_seq = greatest(last_seq, (select max(seq) from audit_events))`,
    );
    // Planner statistics, as autovacuum would gather them after such a load.
    await db.execute(sql`analyze audit_events`);
    const [row] = (
      (await db.execute(
        sql`select min(seq) as seq from audit_events where action = 'tools/call'`,
      )) as unknown as {
        rows: { seq: string }[];
      }
    ).rows;
    firstSeq = Number(row!.seq);
  }, 120_000);

  it('streams 100k events as JSONL in seq order with bounded memory', async () => {
    const res = await get('format=jsonl&action=tools/call');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="audit-[\w-]+\.jsonl"$/);
    const out = await consume(res, 'jsonl');
    expect(out.records).toBe(TOTAL);
    expect(out.bytes).toBeGreaterThan(60_000_000);
    // Holding the result would need at least the output's size; streaming needs a page.
    expect(out.peakHeapGrowth).toBeLessThan(50_000_000);
    const first = JSON.parse(out.head.split('\n')[0]!);
    expect(first).toMatchObject({ seq: firstSeq, action: 'tools/call', details: { i: 1 } });
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    const last = JSON.parse(out.tail.trimEnd().split('\n').at(-1)!);
    expect(last).toMatchObject({ seq: firstSeq + TOTAL - 1, details: { i: TOTAL } });
  }, 120_000);

  it('streams 100k events as CSV with bounded memory', async () => {
    const res = await get('format=csv&action=tools/call');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(res.headers.get('content-disposition')).toMatch(/filename="audit-[\w-]+\.csv"$/);
    const out = await consume(res, 'csv');
    expect(out.records).toBe(TOTAL + 1); // with the header
    expect(out.bytes).toBeGreaterThan(50_000_000);
    expect(out.peakHeapGrowth).toBeLessThan(50_000_000);
    const [header, first] = parseCsv(out.head);
    expect(header!.slice(0, 6)).toEqual(['seq', 'id', 'at', 'category', 'action', 'status']);
    expect(first![0]).toBe(String(firstSeq));
    expect(JSON.parse(first![header!.indexOf('details')]!)).toMatchObject({ i: 1 });
  }, 120_000);

  it('applies the listing filters, and escapes CSV fields exactly', async () => {
    const repo = new AuditRepository(ctx.server.core.database.db);
    const tricky = {
      category: 'admin' as const,
      action: 'csv.test',
      status: 'error' as const,
      serverSlug: 'gamma',
      toolName: '=cmd|" /C calc"!A0',
      clientName: '@SUM(1+1)',
      clientVersion: '-1',
      error: 'a,b "quoted"\r\nsecond line\nthird',
      resourceUri: 'file:///tmp/x,y.txt',
      latencyMs: 12,
      details: { note: 'comma, "quote" and\nnewline', n: -5 },
    };
    await repo.appendChained(
      [buildAuditRecord(tricky), buildAuditRecord({ ...tricky, serverSlug: 'delta' })],
      {
        dedupe: false,
      },
    );
    const res = await get('format=csv&action=csv.test&server=gamma');
    const [header, row, extra] = parseCsv(await res.text());
    expect(extra).toBeUndefined();
    const value = (name: string) => row![header!.indexOf(name)];
    expect(value('serverSlug')).toBe('gamma');
    expect(value('error')).toBe(tricky.error);
    expect(value('resourceUri')).toBe(tricky.resourceUri);
    // Spreadsheet formulas are neutralised with a leading apostrophe.
    expect(value('toolName')).toBe(`'${tricky.toolName}`);
    expect(value('clientName')).toBe(`'${tricky.clientName}`);
    expect(value('clientVersion')).toBe("'-1");
    expect(value('latencyMs')).toBe('12');
    expect(value('userId')).toBe('');
    expect(JSON.parse(value('details')!)).toEqual(tricky.details);

    const jsonl = await (await get('format=jsonl&action=csv.test')).text();
    const events = jsonl
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.map((e) => e.serverSlug)).toEqual(['gamma', 'delta']);
    expect(events[0]).toMatchObject({ toolName: tricky.toolName, error: tricky.error });

    const beta = await consume(await get('format=jsonl&server=beta&action=tools/call'), 'jsonl');
    expect(beta.records).toBe(TOTAL / 10);
  });

  it('is for admins and auditors, validates its query, and is itself audited', async () => {
    const { key } = await createUserKey(ctx.server, 'exporter');
    const refused = await get('format=jsonl', key);
    expect(refused.status).toBe(403);
    const bad = await get('format=xml');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain('query.format');
    expect((await get('format=csv&limit=5')).status).toBe(400);
    await ctx.server.services.audit.flush();
    const recorded = await ctx.admin.get('/api/audit?action=audit.export');
    expect(recorded.body.events.length).toBeGreaterThan(0);
    expect(recorded.body.events[0]).toMatchObject({ category: 'admin', status: 'ok' });
  });
});

describe.each(await engines())('audit export job on %s', (engine) => {
  const exportDir = tempDir('gw-audit-export-');
  const ctx = useServer(engine, { AUDIT_EXPORT_DIR: exportDir, AUDIT_EXPORT_INTERVAL_HOURS: '24' });

  const files = async () => (await readdir(exportDir)).filter((f) => f.endsWith('.jsonl')).sort();

  async function runExport(): Promise<void> {
    const def = ctx.server.core.jobs.get('audit.export')!;
    await def.handler({}, { jobId: 'test', attempt: 1, runner: 'in-process', logger });
  }

  it('writes the events since the last export to audit-<from>-<to>.jsonl, and nothing when there are none', async () => {
    await runExport(); // whatever start-up recorded
    const before = await files();
    for (let i = 0; i < 25; i++) {
      ctx.server.services.audit.record({
        category: 'admin',
        action: 'export.job',
        status: 'ok',
        details: { i },
      });
    }
    await ctx.server.services.audit.flush();
    await runExport();
    const after = await files();
    const added = after.filter((f) => !before.includes(f));
    expect(added).toHaveLength(1);
    const m = /^audit-(\d+)-(\d+)\.jsonl$/.exec(added[0]!);
    expect(m).not.toBeNull();
    const lines = (await readFile(path.join(exportDir, added[0]!), 'utf8')).trimEnd().split('\n');
    const events = lines.map((l) => JSON.parse(l));
    expect(events.filter((e) => e.action === 'export.job').map((e) => e.details.i)).toEqual(
      Array.from({ length: 25 }, (_, i) => i),
    );
    expect(events[0].seq).toBe(Number(m![1]));
    expect(events.at(-1).seq).toBe(Number(m![2]));
    // Consecutive files chain: each event names the previous one's hash.
    for (let i = 1; i < events.length; i++) expect(events[i].prevHash).toBe(events[i - 1].hash);

    await runExport();
    expect(await files()).toEqual(after);
  });
});

describe.each(await engines())('retention with an export directory on %s', (engine) => {
  let test: TestDatabase;
  let db: DatabaseHandle;
  beforeAll(async () => {
    test = await createTestDatabase(engine);
    db = await openDatabase(test.config, logger);
  });
  afterAll(async () => {
    await db?.close();
    await test?.drop();
  });

  it('deletes nothing the export job has not written out yet', async () => {
    const repo = new AuditRepository(db.db);
    const trail = new AuditTrail(repo, { logger, retentionDays: 30, exportDir: tempDir('gw-audit-export-') });
    const old = (i: number) =>
      buildAuditRecord(
        { category: 'mcp', action: 'old', status: 'ok', details: { i } },
        new Date(Date.now() - 60 * DAY),
      );
    await repo.appendChained([old(1), old(2), old(3)], { dedupe: false });
    expect((await trail.applyRetention()).deleted).toBe(0);
    const exported = await trail.exportToDirectory();
    expect(exported?.count).toBe(3);
    await repo.appendChained([old(4)], { dedupe: false });
    // The three exported go; the fourth waits for the next export.
    expect((await trail.applyRetention()).deleted).toBe(3);
    expect(await trail.verify()).toMatchObject({ ok: true, start: { kind: 'retention' } });
  });
});
