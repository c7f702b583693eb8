import { randomUUID } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type {
  AuditChainBreak,
  AuditEventView,
  AuditExportQuery,
  AuditVerifyReport,
  AuditVerifyStart,
  UsageQuery,
  UsageStats,
  UsageWindow,
} from '@gateway/shared';
import type { Writable } from 'node:stream';
import type { Logger } from '../../platform/logging/logger.ts';
import { chainHash, GENESIS_HASH } from './audit.chain.ts';
import { formatEvent, writeExport } from './audit.export.ts';
import type { AuditEventInput } from '../../core/audit.ts';
import { buildAuditRecord } from './audit.record.ts';
import type { AuditFilter, AuditRepository, AuditRow, RetentionDecision } from './audit.repository.ts';
import { toAuditView } from './audit.view.ts';

/** Rows read per query when walking, exporting or deleting: bounds memory whatever the table size. */
const PAGE = 1_000;
const DAY_MS = 86_400_000;
const WINDOW_MS: Record<UsageWindow, number> = { '1h': 3_600_000, '24h': DAY_MS, '7d': 7 * DAY_MS };

/** Retention found a broken link among the events it was about to delete, and deleted nothing. */
export class AuditChainBrokenError extends Error {
  readonly seq: number;
  constructor(seq: number) {
    super(`audit chain broken at seq ${seq}; retention refuses to delete evidence (run audit:verify)`);
    this.name = 'AuditChainBrokenError';
    this.seq = seq;
  }
}

export interface AuditTrailOptions {
  logger: Logger;
  /** Days events are kept; 0 or undefined: forever. */
  retentionDays?: number | undefined;
  /** Where the export job writes; undefined: the job does nothing. */
  exportDir?: string | undefined;
}

/** The read and maintenance side of the audit trail: verification, export, usage, retention. */
export class AuditTrail {
  readonly #repo: AuditRepository;
  readonly #logger: Logger;
  readonly #retentionDays: number;
  readonly #exportDir: string | undefined;

  constructor(repo: AuditRepository, options: AuditTrailOptions) {
    this.#repo = repo;
    this.#logger = options.logger.child({ feature: 'audit' });
    this.#retentionDays = options.retentionDays ?? 0;
    this.#exportDir = options.exportDir;
  }

  /** Events matching `filter` oldest first, `afterSeq < seq <= upToSeq`, one page at a time. */
  async *pages(
    filter: AuditFilter,
    range: { afterSeq?: number; upToSeq?: number } = {},
    repo: AuditRepository = this.#repo,
  ): AsyncGenerator<AuditRow[]> {
    const after = range.afterSeq ?? 0;
    const upTo = range.upToSeq ?? Number.MAX_SAFE_INTEGER;
    const fetch = (afterSeq: number) => {
      const page = repo.page(filter, afterSeq, PAGE);
      // Marked handled: a consumer that stops early leaves the prefetched page unread.
      page.catch(() => {});
      return page;
    };
    let next = fetch(after);
    for (;;) {
      const rows = await next;
      const inRange = rows.at(-1) && rows.at(-1)!.seq > upTo ? rows.filter((r) => r.seq <= upTo) : rows;
      const done = rows.length < PAGE || inRange.length < rows.length;
      // The next page is read while this one is formatted and sent: two pages in memory at most.
      if (!done) next = fetch(rows.at(-1)!.seq);
      if (inRange.length) yield inRange;
      if (done) return;
    }
  }

  async *#views(
    filter: AuditFilter,
    range: { afterSeq?: number; upToSeq?: number },
  ): AsyncGenerator<AuditEventView[]> {
    for await (const rows of this.pages(filter, range)) yield rows.map(toAuditView);
  }

  /**
   * Streams the events matching `query` to `out`, oldest first, up to the chain head as it
   * was when the export began (events recorded meanwhile belong to the next export).
   */
  async exportTo(out: Writable, query: AuditExportQuery): Promise<number> {
    const head = await this.#repo.head();
    return writeExport(this.#views(filterOf(query), head ? { upToSeq: head.seq } : {}), query.format, out);
  }

  /**
   * Walks the chain from the newest checkpoint (or its start) to the head in one snapshot:
   * every event must name the previous event's hash and hash to its stored value, and the
   * last one must be the head. Reports the first link that does not hold.
   */
  async verify(): Promise<AuditVerifyReport> {
    const started = Date.now();
    const report = await this.#repo.snapshot(async (repo, consistent) => ({
      consistent,
      report: await this.#walk(repo, started),
    }));
    if (report.consistent || report.report.ok) return report.report;
    // Without a snapshot (PGlite), retention may have deleted events under the walk: if a
    // newer checkpoint appeared meanwhile, the break may be that; check again from it.
    const checkpoint = await this.#repo.latestCheckpoint();
    if ((checkpoint?.upToSeq ?? 0) === report.report.start.afterSeq) return report.report;
    return this.#walk(this.#repo, started);
  }

  async #walk(repo: AuditRepository, started: number): Promise<AuditVerifyReport> {
    const head = await repo.head();
    const checkpoint = await repo.latestCheckpoint();
    const start: AuditVerifyStart = checkpoint
      ? {
          afterSeq: checkpoint.upToSeq,
          prevHash: checkpoint.lastHash,
          kind: checkpoint.kind,
          at: checkpoint.at.toISOString(),
        }
      : { afterSeq: 0, prevHash: GENESIS_HASH, kind: 'genesis', at: null };
    let prev = start.prevHash;
    let checked = 0;
    let lastSeq: number | null = null;
    let broken: AuditChainBreak | null = null;
    walk: for await (const rows of this.pages(
      {},
      { afterSeq: start.afterSeq, ...(head ? { upToSeq: head.seq } : {}) },
      repo,
    )) {
      for (const row of rows) {
        const expectedHash = chainHash(prev, row.seq, row);
        if (row.prevHash !== prev || row.hash !== expectedHash) {
          broken = {
            seq: row.seq,
            id: row.id,
            reason: row.prevHash !== prev ? 'prev_hash_mismatch' : 'hash_mismatch',
            expectedHash,
            storedHash: row.hash,
            expectedPrevHash: prev,
            storedPrevHash: row.prevHash,
          };
          break walk;
        }
        prev = row.hash;
        checked++;
        lastSeq = row.seq;
      }
    }
    const endSeq = lastSeq ?? start.afterSeq;
    if (!broken && !head) {
      broken = {
        seq: endSeq,
        id: null,
        reason: 'head_missing',
        expectedHash: prev,
        storedHash: '',
        expectedPrevHash: prev,
        storedPrevHash: '',
      };
    } else if (!broken && head && (head.seq !== endSeq || head.hash !== prev)) {
      // Events at the end were deleted (the head names a later one), or the head was edited.
      broken = {
        seq: head.seq,
        id: null,
        reason: 'head_mismatch',
        expectedHash: head.hash,
        storedHash: prev,
        expectedPrevHash: prev,
        storedPrevHash: prev,
      };
    }
    return {
      ok: broken === null,
      checked,
      start,
      lastSeq,
      head: head ?? null,
      broken,
      startedAt: new Date(started).toISOString(),
      durationMs: Date.now() - started,
    };
  }

  /** `tools/call` statistics per server and tool over the window; `userId` undefined: everyone. */
  async usage(query: UsageQuery, userId: string | undefined, now = new Date()): Promise<UsageStats> {
    const since = new Date(now.getTime() - WINDOW_MS[query.window]);
    const rows = await this.#repo.usage({ since, serverSlug: query.server, userId });
    return {
      window: query.window,
      from: since.toISOString(),
      to: now.toISOString(),
      userId: userId ?? null,
      rows: rows.map((r) => ({
        server: r.server,
        tool: r.tool,
        calls: r.calls,
        errors: r.errors,
        denied: r.denied,
        p50Ms: r.p50,
        p95Ms: r.p95,
        p99Ms: r.p99,
      })),
    };
  }

  /**
   * Deletes events older than the retention period, oldest first, in batches. Only a
   * prefix of the chain is ever deleted (events are stamped before they are sequenced, so
   * times are not strictly in `seq` order), each batch's links are checked before it goes
   * (a broken link stops the job: deleting it would destroy the evidence), and the run's
   * checkpoint moves in the same transaction as each delete. With an export directory
   * configured, nothing is deleted before the export job has written it out.
   */
  async applyRetention(now = new Date()): Promise<{ deleted: number; checkpointSeq: number | null }> {
    if (!this.#retentionDays) return { deleted: 0, checkpointSeq: null };
    const cutoff = new Date(now.getTime() - this.#retentionDays * DAY_MS);
    const bound = this.#exportDir ? await this.#repo.lastExportedSeq() : Number.MAX_SAFE_INTEGER;
    const runId = randomUUID();
    let deleted = 0;
    let checkpointSeq: number | null = null;
    for (;;) {
      const n = await this.#repo.retentionBatch(
        runId,
        PAGE,
        (rows, checkpoint): RetentionDecision | undefined => {
          const chainStart = checkpoint?.upToSeq ?? 0;
          let prev = checkpoint?.lastHash ?? GENESIS_HASH;
          let last: AuditRow | undefined;
          let lastChained: AuditRow | undefined;
          for (const row of rows) {
            if (row.at >= cutoff || row.seq > bound) break;
            if (row.seq > chainStart) {
              if (row.prevHash !== prev || row.hash !== chainHash(prev, row.seq, row)) {
                throw new AuditChainBrokenError(row.seq);
              }
              prev = row.hash;
              lastChained = row;
            }
            last = row;
          }
          if (!last) return undefined;
          if (lastChained) checkpointSeq = lastChained.seq;
          return {
            deleteUpToSeq: last.seq,
            ...(lastChained ? { checkpoint: { upToSeq: lastChained.seq, lastHash: lastChained.hash } } : {}),
          };
        },
      );
      deleted += n;
      if (n < PAGE) break;
    }
    if (deleted) {
      this.#logger.info(
        { deleted, cutoff: cutoff.toISOString(), checkpointSeq },
        'audit retention deleted old events',
      );
      await this.#recordNow({
        category: 'admin',
        action: 'audit.retention',
        status: 'ok',
        details: {
          deleted,
          olderThan: cutoff.toISOString(),
          checkpointSeq,
          retentionDays: this.#retentionDays,
        },
      });
    }
    return { deleted, checkpointSeq };
  }

  /**
   * Writes the events recorded since the last export to `<exportDir>/audit-<fromSeq>-<toSeq>.jsonl`
   * (fsync'd, then renamed into place) and remembers where it stopped. Each line is one event as
   * `GET /api/audit/export` gives it, with its `seq`, `prevHash` and `hash`, so consecutive
   * files can be checked for gaps and tampering away from the database.
   */
  async exportToDirectory(): Promise<
    { file: string; fromSeq: number; toSeq: number; count: number } | undefined
  > {
    const dir = this.#exportDir;
    if (!dir) return undefined;
    const after = await this.#repo.lastExportedSeq();
    const head = await this.#repo.head();
    if (!head || head.seq <= after) return undefined;
    await mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.audit-export-${randomUUID()}.tmp`);
    const fh = await open(tmp, 'wx', 0o600);
    let count = 0;
    let fromSeq = 0;
    let toSeq = 0;
    try {
      for await (const rows of this.pages({}, { afterSeq: after, upToSeq: head.seq })) {
        await fh.writeFile(rows.map((r) => formatEvent(toAuditView(r), 'jsonl')).join(''), 'utf8');
        if (!count) fromSeq = rows[0]!.seq;
        toSeq = rows.at(-1)!.seq;
        count += rows.length;
      }
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    if (!count) {
      await rm(tmp, { force: true });
      return undefined;
    }
    const file = path.join(dir, `audit-${fromSeq}-${toSeq}.jsonl`);
    await rename(tmp, file);
    await syncDir(dir);
    await this.#repo.recordExport({ fromSeq, toSeq, eventCount: count, file: path.basename(file) });
    // Not recorded as an audit event: each file would then carry the previous run's record,
    // so an idle trail would still produce a file per run. The file and this log line are the record.
    this.#logger.info({ file, count, fromSeq, toSeq }, 'audit events exported');
    return { file, fromSeq, toSeq, count };
  }

  /** Appends one event at once (jobs may run where no batching writer exists: the workers process). */
  async #recordNow(event: AuditEventInput): Promise<void> {
    await this.#repo.appendChained([buildAuditRecord(event)], { dedupe: false });
  }
}

function filterOf(q: AuditExportQuery): AuditFilter {
  return {
    userId: q.userId,
    serverSlug: q.server,
    action: q.action,
    toolName: q.tool,
    threadId: q.threadId,
    status: q.status,
    category: q.category,
    from: q.from ? new Date(q.from) : undefined,
    to: q.to ? new Date(q.to) : undefined,
  };
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort: not every platform syncs directories */
  }
}
