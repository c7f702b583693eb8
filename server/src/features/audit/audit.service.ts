import type { AuditPage, AuditQuery } from '@gateway/shared';
import { badRequest } from '../../platform/http/errors.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditEventInput, AuditSink } from '../../core/audit.ts';
import { buildAuditRecord, type AuditRecord } from './audit.record.ts';
import type { AuditRepository } from './audit.repository.ts';
import { AuditSpool, compareOrder, type SpoolFile } from './audit.spool.ts';
import { AuditTrail } from './audit.trail.ts';
import { toAuditView } from './audit.view.ts';

/** How the batching writer behaves (from the `AUDIT_*` configuration). */
export interface AuditWriterOptions {
  logger: Logger;
  /** Events per database transaction. */
  batchSize: number;
  /** How long an event may wait in memory before its batch is written. */
  flushIntervalMs: number;
  /** Events held in memory; beyond this many, they spill to `spoolDir`. */
  bufferMax: number;
  /** The disk spool (DATA_DIR/audit-spool). */
  spoolDir: string;
  /** Longest pause between two write attempts while the database is down (default 30 s). */
  maxRetryMs?: number;
}

/** Events waiting to reach the database, for metrics. */
export interface AuditPending {
  /** In memory (including those being written to disk right now). */
  buffered: number;
  /** In spool files on disk. */
  spooled: number;
}

interface Buffered {
  readonly record: AuditRecord;
  /** Position in this run's recording order (spool files are ordered by it). */
  readonly n: number;
  /** A write of this event failed; it may have committed anyway, so the next write de-duplicates. */
  retried: boolean;
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, Math.max(0, ms)).unref();
  });

/**
 * Collects audit events off the request path and appends them to the hash chain in batches.
 * `record` never blocks and never throws. Nothing is dropped: while the database is slow
 * or down, events wait in a bounded buffer and, beyond `bufferMax`, in fsync'd spool files
 * on disk; when it is back, they are written oldest first (spool files, then memory).
 * Files left by an earlier run are replayed after `start()`. `stop()` flushes, or spills
 * what it cannot flush to disk.
 */
export class AuditService implements AuditSink {
  /** Verification, export, usage statistics and retention over the same repository. */
  readonly trail: AuditTrail;
  readonly #repo: AuditRepository;
  readonly #logger: Logger;
  readonly #batchSize: number;
  readonly #intervalMs: number;
  readonly #bufferMax: number;
  readonly #maxRetryMs: number;
  readonly #spool: AuditSpool;
  readonly #runStart = Date.now();
  /** In recording order; the first `#inflight` are being written to the database. */
  #buffer: Buffered[] = [];
  #inflight = 0;
  #counter = 0;
  /** Spool files not yet written to the database, oldest first. */
  #files: SpoolFile[] = [];
  /** Spills and scans run one after another on this chain, so the file list stays ordered. */
  #spoolChain: Promise<void> = Promise.resolve();
  #spilling = 0;
  #spooled = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #failures = 0;
  /** After a failed write, no scheduled attempt before this time (backoff). */
  #notBefore = 0;
  #stopped = false;
  /** Bumped when stop() takes over events that may be in flight; a late success then leaves the buffer alone. */
  #epoch = 0;

  constructor(repo: AuditRepository, options: AuditWriterOptions) {
    this.#repo = repo;
    this.#logger = options.logger.child({ feature: 'audit' });
    this.#batchSize = options.batchSize;
    this.#intervalMs = options.flushIntervalMs;
    this.#bufferMax = options.bufferMax;
    this.#maxRetryMs = options.maxRetryMs ?? 30_000;
    this.#spool = new AuditSpool(options.spoolDir, this.#logger);
    this.trail = new AuditTrail(repo, { logger: options.logger });
  }

  /** Events not yet in the database (memory and spool together), for metrics. */
  get pending(): number {
    return this.#buffer.length + this.#spilling + this.#spooled;
  }

  /** `pending`, split into memory and disk. */
  get pendingDetail(): AuditPending {
    return { buffered: this.#buffer.length + this.#spilling, spooled: this.#spooled };
  }

  /** Picks up spool files an earlier run left behind and starts writing them. */
  async start(): Promise<void> {
    await this.#enqueueSpool(async () => {
      const found = await this.#spool.scan().catch((err: unknown) => {
        throw new Error(
          `cannot read the audit spool directory ${this.#spool.dir}: ${(err as Error).message}`,
        );
      });
      const known = new Set(this.#files.map((f) => f.name));
      const added = found.filter((f) => !known.has(f.name));
      this.#files = [...this.#files, ...added].sort((a, b) => compareOrder(a.order, b.order));
      const events = added.reduce((n, f) => n + f.count, 0);
      this.#spooled += events;
      if (events) this.#logger.warn({ files: added.length, events }, 'replaying spooled audit events');
    });
    this.#schedule(0);
  }

  record(event: AuditEventInput): void {
    let record: AuditRecord;
    try {
      record = buildAuditRecord(event);
    } catch (err) {
      // Never lose the fact that something happened, even if its details were unusable.
      this.#logger.error(
        { err: (err as Error).message, action: event.action },
        'audit event could not be prepared',
      );
      record = buildAuditRecord({
        category: event.category,
        action: String(event.action),
        status: event.status,
        error: 'audit details could not be recorded',
      });
    }
    this.#buffer.push({ record, n: this.#counter++, retried: false });
    if (this.#stopped) {
      // Late events (after shutdown began) go straight to disk for the next start.
      queueMicrotask(() => this.#spill());
      return;
    }
    if (this.#buffer.length > this.#bufferMax) this.#spill();
    if (this.#buffer.length >= this.#batchSize) this.#schedule(0);
    else this.#schedule(this.#intervalMs);
  }

  #schedule(delay: number) {
    if (this.#stopped) return;
    // While the database is failing, a full batch must not cut the backoff short.
    delay = Math.max(delay, this.#notBefore - Date.now());
    if (this.#timer && delay > 0) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, delay);
    this.#timer.unref();
  }

  #enqueueSpool(task: () => Promise<void>): Promise<void> {
    const next = this.#spoolChain.then(task);
    this.#spoolChain = next.catch(() => {});
    return next;
  }

  /** Moves every event not being written right now from memory to a new spool file. */
  #spill(): void {
    const events = this.#buffer.splice(this.#inflight);
    if (!events.length) return;
    this.#spilling += events.length;
    const order = [this.#runStart, events[0]!.n] as const;
    this.#enqueueSpool(async () => {
      try {
        const file = await this.#spool.write(
          events.map((e) => e.record),
          order,
        );
        this.#files.push(file);
        this.#files.sort((a, b) => compareOrder(a.order, b.order));
        this.#spooled += events.length;
        this.#logger.warn(
          { file: file.name, events: events.length, spooled: this.#spooled },
          'audit buffer full; events spilled to disk',
        );
      } catch (err) {
        // The disk failed too: keep them in memory (in order) rather than lose them.
        this.#logger.error(
          { err: (err as Error).message, events: events.length },
          'could not spill audit events to disk; keeping them in memory',
        );
        const at = this.#buffer.findIndex((b) => b.n > events[0]!.n);
        this.#buffer.splice(at < 0 ? this.#buffer.length : at, 0, ...events);
      } finally {
        this.#spilling -= events.length;
      }
    }).catch(() => {});
  }

  /** Writes what is pending (spool files first, then memory, oldest first); resolves when done or after a failed write. */
  async flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = this.#drain().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #drain(): Promise<void> {
    try {
      for (;;) {
        // A spill in progress lands in the file list first, so its place in the order is known.
        await this.#spoolChain;
        // Another spill began meanwhile: its (older) events must be on disk before newer ones go.
        if (this.#spilling) continue;
        const file = this.#files[0];
        const front = this.#buffer[0];
        if (file && (!front || compareOrder(file.order, [this.#runStart, front.n]) < 0)) {
          await this.#replay(file);
          continue;
        }
        if (!front) break;
        let take = Math.min(this.#batchSize, this.#buffer.length);
        if (file) {
          // Only the events recorded before the next spool file's first one.
          const older = this.#buffer.findIndex((b) => compareOrder(file.order, [this.#runStart, b.n]) < 0);
          if (older >= 0) take = Math.min(take, older);
        }
        const batch = this.#buffer.slice(0, take);
        const epoch = this.#epoch;
        this.#inflight = batch.length;
        try {
          await this.#repo.appendChained(
            batch.map((b) => b.record),
            { dedupe: batch.some((b) => b.retried) },
          );
        } catch (err) {
          for (const b of batch) b.retried = true;
          throw err;
        } finally {
          if (epoch === this.#epoch) this.#inflight = 0;
        }
        if (epoch === this.#epoch) this.#buffer.splice(0, batch.length);
        this.#failures = 0;
        this.#notBefore = 0;
      }
    } catch (err) {
      this.#failures++;
      const retryMs = Math.min(this.#maxRetryMs, 250 * 2 ** Math.min(this.#failures, 7));
      this.#notBefore = Date.now() + retryMs;
      this.#logger.error(
        { err: (err as Error).message, ...this.pendingDetail, retryMs },
        'audit write failed; keeping events and retrying',
      );
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#schedule(retryMs);
    }
  }

  async #replay(file: SpoolFile): Promise<void> {
    try {
      for await (const { records, lines } of this.#spool.read(file, this.#batchSize)) {
        await this.#repo.appendChained(records, { dedupe: true });
        file.doneLines += lines;
        this.#spooled = Math.max(0, this.#spooled - lines);
      }
    } catch (err) {
      // Another process sharing the directory replayed and removed it: nothing left to do.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await this.#spool.remove(file);
    // A torn file holds fewer lines than its name says.
    this.#spooled = Math.max(0, this.#spooled - Math.max(0, file.count - file.doneLines));
    this.#files = this.#files.filter((f) => f !== file);
    this.#logger.info({ file: file.name, events: file.doneLines }, 'spooled audit events written');
  }

  /**
   * Flushes until everything is in the database or the deadline passes; if the database
   * fails or the time runs out, everything still in memory is spilled to disk for the next
   * start. Events recorded afterwards go straight to disk.
   */
  async stop(timeoutMs: number): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const deadline = Date.now() + timeoutMs;
    const left = () => this.#buffer.length + this.#files.length + this.#spilling;
    this.#failures = 0;
    while (left() && Date.now() < deadline) {
      await Promise.race([this.flush(), sleep(deadline - Date.now())]);
      // The database is unavailable: spill now instead of spending the whole budget.
      if (this.#failures > 0) break;
    }
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#epoch++;
    this.#inflight = 0;
    const rest = this.#buffer.length;
    this.#spill();
    await this.#spoolChain;
    if (this.#buffer.length) {
      this.#logger.error(
        { lost: this.#buffer.length },
        'audit events could not be written to the database or disk',
      );
    } else if (rest || this.#files.length) {
      this.#logger.warn({ spooled: this.#spooled }, 'audit events left in the spool for the next start');
    }
  }

  async query(query: AuditQuery): Promise<AuditPage> {
    let beforeSeq: number | undefined;
    if (query.cursor) {
      beforeSeq = Number(Buffer.from(query.cursor, 'base64url').toString());
      if (!Number.isSafeInteger(beforeSeq) || beforeSeq < 1)
        throw badRequest('query.cursor: is not a valid cursor');
    }
    const rows = await this.#repo.query(
      {
        userId: query.userId,
        serverSlug: query.server,
        action: query.action,
        toolName: query.tool,
        threadId: query.threadId,
        status: query.status,
        category: query.category,
        from: query.from ? new Date(query.from) : undefined,
        to: query.to ? new Date(query.to) : undefined,
        beforeSeq,
      },
      query.limit + 1,
    );
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return {
      events: page.map(toAuditView),
      nextCursor:
        rows.length > query.limit && last ? Buffer.from(String(last.seq)).toString('base64url') : null,
    };
  }
}
