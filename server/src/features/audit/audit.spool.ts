import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../../platform/logging/logger.ts';
import { recordFromLine, recordToLine, type AuditRecord } from './audit.record.ts';

/**
 * One spool file. Its name orders it: `<run start ms>-<counter of its first event>-<pid>-<events>.jsonl`,
 * both numbers zero-padded, so sorting names sorts files by when their events were recorded.
 */
export interface SpoolFile {
  readonly name: string;
  /** [run start, counter of the first event]: compared with the events still in memory. */
  readonly order: readonly [number, number];
  /** Events the file holds (from its name). */
  readonly count: number;
  /** Lines already written to the database by this process (a retry skips them). */
  doneLines: number;
}

const NAME = /^(\d{15})-(\d{12})-(\d+)-(\d+)\.jsonl$/;
const TMP = /^(\d{15})-(\d{12})-(\d+)-(\d+)\.jsonl\.tmp$/;
// Lines per write call: bounds the size of the strings built for one spill.
const WRITE_CHUNK = 500;

function parseName(name: string): SpoolFile | undefined {
  const m = NAME.exec(name);
  return m ? { name, order: [Number(m[1]), Number(m[2])], count: Number(m[4]), doneLines: 0 } : undefined;
}

/** Compares two [run start, counter] positions. */
export function compareOrder(a: readonly [number, number], b: readonly [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The audit writer's overflow on disk: append-only JSONL files under one directory, each
 * written once (to a temporary name, fsync'd, then renamed), so a file that exists under
 * its final name is complete. Files are removed only after every event in them is in the
 * database.
 */
export class AuditSpool {
  readonly dir: string;
  readonly #logger: Logger;

  constructor(dir: string, logger: Logger) {
    this.dir = dir;
    this.#logger = logger;
  }

  /**
   * Lists the files left by earlier runs, oldest first. A temporary file of a process that
   * is gone (it died between fsync and rename) is adopted: its complete lines are replayed.
   */
  async scan(): Promise<SpoolFile[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    for (const name of names) {
      const m = TMP.exec(name);
      if (m && Number(m[3]) !== process.pid && !pidAlive(Number(m[3]))) {
        const final = name.slice(0, -'.tmp'.length);
        await rename(path.join(this.dir, name), path.join(this.dir, final));
        names.push(final);
        this.#logger.warn({ file: final }, 'adopted an unfinished audit spool file');
      }
    }
    return names
      .map(parseName)
      .filter((f): f is SpoolFile => f !== undefined)
      .sort((a, b) => compareOrder(a.order, b.order) || (a.name < b.name ? -1 : 1));
  }

  /** Writes `records` (recorded in this order) to a new file, durably. */
  async write(records: readonly AuditRecord[], order: readonly [number, number]): Promise<SpoolFile> {
    const name = `${String(order[0]).padStart(15, '0')}-${String(order[1]).padStart(12, '0')}-${process.pid}-${records.length}.jsonl`;
    const final = path.join(this.dir, name);
    const tmp = `${final}.tmp`;
    await mkdir(this.dir, { recursive: true });
    const fh = await open(tmp, 'wx', 0o600);
    try {
      for (let i = 0; i < records.length; i += WRITE_CHUNK) {
        const chunk =
          records
            .slice(i, i + WRITE_CHUNK)
            .map(recordToLine)
            .join('\n') + '\n';
        await fh.writeFile(chunk, 'utf8');
      }
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
    await fh.close();
    await rename(tmp, final);
    await this.#syncDir();
    return { name, order, count: records.length, doneLines: 0 };
  }

  /**
   * Reads a file in batches of up to `batchSize` records, skipping the lines already done.
   * Yields the records and how many lines they came from (a torn or corrupt line is logged
   * and counted, not returned).
   */
  async *read(file: SpoolFile, batchSize: number): AsyncGenerator<{ records: AuditRecord[]; lines: number }> {
    const stream = createReadStream(path.join(this.dir, file.name), { encoding: 'utf8' });
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    let index = 0;
    let batch: AuditRecord[] = [];
    let batchLines = 0;
    try {
      for await (const line of lines) {
        if (index++ < file.doneLines) continue;
        batchLines++;
        if (!line.trim()) continue;
        const record = recordFromLine(line);
        if (record) batch.push(record);
        else
          this.#logger.error({ file: file.name, line: index }, 'unreadable line in the audit spool; skipped');
        if (batch.length >= batchSize) {
          yield { records: batch, lines: batchLines };
          batch = [];
          batchLines = 0;
        }
      }
      if (batchLines) yield { records: batch, lines: batchLines };
    } finally {
      lines.close();
      stream.destroy();
    }
  }

  async remove(file: SpoolFile): Promise<void> {
    await rm(path.join(this.dir, file.name), { force: true });
  }

  async #syncDir(): Promise<void> {
    // The rename is durable only once the directory entry is; not every platform allows it.
    try {
      const dir = await open(this.dir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch {
      /* best effort */
    }
  }
}
