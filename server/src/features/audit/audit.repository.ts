import { and, asc, desc, eq, gt, gte, inArray, lt, lte, sql, type SQL } from 'drizzle-orm';
import { PgliteDatabase } from 'drizzle-orm/pglite';
import { transaction, type Database } from '../../platform/db/database.ts';
import { chainHash, GENESIS_HASH } from './audit.chain.ts';
import type { AuditRecord } from './audit.record.ts';
import { auditChainHead, auditCheckpoints, auditEvents, auditExports } from './audit.schema.ts';

export type AuditRow = typeof auditEvents.$inferSelect;
export type AuditCheckpointRow = typeof auditCheckpoints.$inferSelect;

export interface AuditFilter {
  userId?: string | undefined;
  serverSlug?: string | undefined;
  action?: string | undefined;
  toolName?: string | undefined;
  threadId?: string | undefined;
  status?: 'ok' | 'error' | 'denied' | undefined;
  category?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  /** Only events older than this sequence number (cursor pagination, newest first). */
  beforeSeq?: number | undefined;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

/** What one retention batch decided, inside its transaction. */
export interface RetentionDecision {
  /** Delete every event with `seq` up to this one. */
  deleteUpToSeq: number;
  /** Move the run's checkpoint here (omitted when only pre-chain events were deleted). */
  checkpoint?: { upToSeq: number; lastHash: string };
}

export interface UsageAggregate {
  server: string | null;
  tool: string | null;
  calls: number;
  errors: number;
  denied: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

// Rows per INSERT statement: 26 columns each stays well under PostgreSQL's 65535 parameters.
const INSERT_CHUNK = 1_000;

const rowsOf = <T>(result: unknown): T[] => (result as { rows: T[] }).rows;

function where(filter: AuditFilter): SQL[] {
  const w: SQL[] = [];
  if (filter.userId) w.push(eq(auditEvents.userId, filter.userId));
  if (filter.serverSlug) w.push(eq(auditEvents.serverSlug, filter.serverSlug));
  if (filter.action) w.push(eq(auditEvents.action, filter.action));
  if (filter.toolName) w.push(eq(auditEvents.toolName, filter.toolName));
  if (filter.threadId) w.push(eq(auditEvents.threadId, filter.threadId));
  if (filter.status) w.push(eq(auditEvents.status, filter.status));
  if (filter.category) w.push(eq(auditEvents.category, filter.category));
  if (filter.from) w.push(gte(auditEvents.at, filter.from));
  if (filter.to) w.push(lte(auditEvents.at, filter.to));
  return w;
}

/** The only code touching the audit tables: the chained append, reads, retention, statistics, export positions. */
export class AuditRepository {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  /**
   * Appends events to the hash chain in one transaction: locks the chain head row (so
   * every writer, in any process, chains one batch at a time), takes sequence numbers,
   * computes each hash from the previous one, inserts, and moves the head. With `dedupe`,
   * events whose id is already stored are skipped (a replayed spool file, or a retry after
   * a commit whose acknowledgement was lost). Returns how many were inserted.
   */
  async appendChained(records: readonly AuditRecord[], options: { dedupe: boolean }): Promise<number> {
    if (!records.length) return 0;
    return transaction(this.#db, async (tx) => {
      const head = await lockHead(tx);
      let todo = records;
      if (options.dedupe) {
        const existing = await tx
          .select({ id: auditEvents.id })
          .from(auditEvents)
          .where(
            inArray(
              auditEvents.id,
              records.map((r) => r.id),
            ),
          );
        if (existing.length) {
          const seen = new Set(existing.map((e) => e.id));
          todo = records.filter((r) => !seen.has(r.id));
        }
        // A record can also appear twice within one batch after a crash mid-replay.
        const unique = new Map(todo.map((r) => [r.id, r]));
        if (unique.size !== todo.length) todo = [...unique.values()];
        if (!todo.length) return 0;
      }
      const seqs = rowsOf<{ seq: string | number | bigint }>(
        await tx.execute(
          sql`select nextval(pg_get_serial_sequence('audit_events', 'seq')) as seq from generate_series(1, ${todo.length})`,
        ),
      )
        .map((r) => Number(r.seq))
        .sort((a, b) => a - b);
      let prev = head.hash;
      const rows = todo.map((r, i) => {
        const seq = seqs[i]!;
        const hash = chainHash(prev, seq, r);
        const row = { ...r, seq, prevHash: prev, hash };
        prev = hash;
        return row;
      });
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        await tx.insert(auditEvents).values(rows.slice(i, i + INSERT_CHUNK));
      }
      const last = rows.at(-1)!;
      await tx
        .update(auditChainHead)
        .set({ lastSeq: last.seq, lastHash: last.hash, updatedAt: new Date() })
        .where(eq(auditChainHead.id, 1));
      return rows.length;
    });
  }

  /** Newest first, `limit` rows. */
  async query(filter: AuditFilter, limit: number): Promise<AuditRow[]> {
    const w = where(filter);
    if (filter.beforeSeq !== undefined) w.push(lt(auditEvents.seq, filter.beforeSeq));
    return this.#db
      .select()
      .from(auditEvents)
      .where(w.length ? and(...w) : undefined)
      .orderBy(desc(auditEvents.seq))
      .limit(limit);
  }

  /**
   * Oldest first: events with `seq > afterSeq` matching `filter`, `limit` of them (keyset
   * pagination). No upper bound in SQL: `seq > x order by seq limit n` walks the primary key
   * in order, where an added range tempts the planner into scanning and sorting the range.
   */
  async page(filter: AuditFilter, afterSeq: number, limit: number): Promise<AuditRow[]> {
    const w = where(filter);
    w.push(gt(auditEvents.seq, afterSeq));
    return this.#db
      .select()
      .from(auditEvents)
      .where(and(...w))
      .orderBy(asc(auditEvents.seq))
      .limit(limit);
  }

  /** The end of the chain, or undefined when the head row is missing. */
  async head(): Promise<ChainHead | undefined> {
    const [row] = await this.#db.select().from(auditChainHead).where(eq(auditChainHead.id, 1));
    return row ? { seq: row.lastSeq, hash: row.lastHash } : undefined;
  }

  /** The checkpoint verification starts from: the one covering the most events. */
  async latestCheckpoint(): Promise<AuditCheckpointRow | undefined> {
    const [row] = await this.#db
      .select()
      .from(auditCheckpoints)
      .orderBy(desc(auditCheckpoints.upToSeq), desc(auditCheckpoints.at))
      .limit(1);
    return row;
  }

  /**
   * Runs `fn` over one consistent snapshot (repeatable read, read-only) on PostgreSQL, so a
   * verification is not confused by events written or deleted while it walks the chain.
   * PGlite runs a transaction exclusively (every other query of the process would wait for
   * the whole walk), so there `fn` runs outside one and reports whether it had a snapshot.
   */
  async snapshot<T>(fn: (repo: AuditRepository, consistent: boolean) => Promise<T>): Promise<T> {
    if (this.#db instanceof PgliteDatabase) return fn(this, false);
    return transaction(this.#db, (tx) => fn(new AuditRepository(tx), true), {
      isolationLevel: 'repeatable read',
      accessMode: 'read only',
    });
  }

  /**
   * One retention batch in one transaction, holding the chain head lock: reads the oldest
   * `limit` events and the newest checkpoint, lets `decide` choose what to delete (it may
   * throw to refuse), deletes, and moves this run's checkpoint in the same transaction, so
   * the checkpoint always matches what is gone. Returns how many events were deleted.
   */
  async retentionBatch(
    runId: string,
    limit: number,
    decide: (rows: AuditRow[], checkpoint: AuditCheckpointRow | undefined) => RetentionDecision | undefined,
  ): Promise<number> {
    return transaction(this.#db, async (tx) => {
      await lockHead(tx);
      const repo = new AuditRepository(tx);
      const checkpoint = await repo.latestCheckpoint();
      const rows = await tx.select().from(auditEvents).orderBy(asc(auditEvents.seq)).limit(limit);
      const decision = decide(rows, checkpoint);
      if (!decision) return 0;
      const deleted = await tx
        .delete(auditEvents)
        .where(lte(auditEvents.seq, decision.deleteUpToSeq))
        .returning({ seq: auditEvents.seq });
      if (decision.checkpoint) {
        await tx
          .insert(auditCheckpoints)
          .values({
            id: runId,
            kind: 'retention',
            upToSeq: decision.checkpoint.upToSeq,
            lastHash: decision.checkpoint.lastHash,
            deletedCount: deleted.length,
          })
          .onConflictDoUpdate({
            target: auditCheckpoints.id,
            set: {
              upToSeq: decision.checkpoint.upToSeq,
              lastHash: decision.checkpoint.lastHash,
              deletedCount: sql`${auditCheckpoints.deletedCount} + ${deleted.length}`,
              at: new Date(),
            },
          });
      }
      return deleted.length;
    });
  }

  /** `tools/call` counts and latency percentiles per server and tool since `since`. */
  async usage(filter: { since: Date; serverSlug?: string | undefined; userId?: string | undefined }) {
    const conditions = [
      sql`category = 'mcp'`,
      sql`action = 'tools/call'`,
      sql`at >= ${filter.since.toISOString()}::timestamptz`,
      ...(filter.serverSlug ? [sql`server_slug = ${filter.serverSlug}`] : []),
      ...(filter.userId ? [sql`user_id = ${filter.userId}::uuid`] : []),
    ];
    // Denied calls never reached the upstream: counted, but kept out of the latencies.
    const reached = sql`status <> 'denied' and latency_ms is not null`;
    const result = await this.#db.execute(sql`
      select server_slug as server, tool_name as tool,
        count(*)::int as calls,
        (count(*) filter (where status = 'error'))::int as errors,
        (count(*) filter (where status = 'denied'))::int as denied,
        (percentile_cont(0.5) within group (order by latency_ms) filter (where ${reached}))::float8 as p50,
        (percentile_cont(0.95) within group (order by latency_ms) filter (where ${reached}))::float8 as p95,
        (percentile_cont(0.99) within group (order by latency_ms) filter (where ${reached}))::float8 as p99
      from audit_events
      where ${sql.join(conditions, sql` and `)}
      group by server_slug, tool_name
      order by server_slug nulls first, tool_name nulls first`);
    return rowsOf<UsageAggregate>(result).map((r) => ({
      ...r,
      p50: r.p50 == null ? null : Number(r.p50),
      p95: r.p95 == null ? null : Number(r.p95),
      p99: r.p99 == null ? null : Number(r.p99),
    }));
  }

  /** The largest sequence number an export file covers (0 before the first export). */
  async lastExportedSeq(): Promise<number> {
    const [row] = await this.#db
      .select({ toSeq: auditExports.toSeq })
      .from(auditExports)
      .orderBy(desc(auditExports.toSeq))
      .limit(1);
    return row?.toSeq ?? 0;
  }

  async recordExport(entry: {
    fromSeq: number;
    toSeq: number;
    eventCount: number;
    file: string;
  }): Promise<void> {
    await this.#db.insert(auditExports).values(entry);
  }
}

/**
 * Locks the chain head row for the rest of the transaction. Under READ COMMITTED a writer
 * that waited for the lock reads the head its predecessor committed. A missing row (deleted
 * by hand) is recreated from the newest event, so writing never stops; verification still
 * reports the damage.
 */
async function lockHead(db: Database): Promise<ChainHead> {
  const read = () => db.select().from(auditChainHead).where(eq(auditChainHead.id, 1)).for('update');
  let [row] = await read();
  if (!row) {
    await db.execute(sql`
      insert into audit_chain_head (id, last_seq, last_hash)
      select 1, coalesce(max(seq), 0),
        coalesce((select nullif(hash, '') from audit_events order by seq desc limit 1), ${GENESIS_HASH})
      from audit_events
      on conflict (id) do nothing`);
    [row] = await read();
  }
  return { seq: row!.lastSeq, hash: row!.lastHash };
}
