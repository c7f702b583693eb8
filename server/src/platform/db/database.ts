import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT, PgTransactionConfig } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import type { DatabaseConfig } from '../config/config.ts';
import type { Logger } from '../logging/logger.ts';
import * as schema from './schema.ts';

export { schema };

/** The drizzle handle every repository receives. Same type on PostgreSQL and PGlite. */
export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface DatabaseHandle {
  readonly db: Database;
  readonly kind: 'postgres' | 'pglite';
  /** Round trip to the database; rejects when it is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The database could not be opened; the message is safe to print (no credentials). */
export class DatabaseUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
  }
}

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../drizzle');

// Arbitrary constant: serialises migrations when several replicas start at once.
const MIGRATION_LOCK_ID = 727_431_001;

/** Describes a PostgreSQL URL without its password, for messages. */
export function describePostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

/** pg error text, with any connection string in it removed. */
function safeMessage(err: unknown): string {
  const e = err as { message?: string; code?: string };
  const text = (e?.message || e?.code || String(err)).replace(/postgres(ql)?:\/\/\S+/gi, '<url>');
  return text.split('\n')[0] ?? text;
}

/**
 * Opens the configured database and applies pending migrations. On PostgreSQL migrations
 * run under an advisory lock so concurrent replicas do not race; on PGlite a lock file
 * stops a second process from opening the same data directory (PGlite is single-process
 * and two writers corrupt it).
 */
export async function openDatabase(
  config: DatabaseConfig,
  logger: Logger,
  options: { migrate?: boolean } = {},
): Promise<DatabaseHandle> {
  const handle =
    config.kind === 'postgres' ? await openPostgres(config, logger) : await openPglite(config.dir, logger);
  if (options.migrate !== false) {
    try {
      await handle.migrate();
    } catch (err) {
      await handle.close().catch(() => {});
      throw new DatabaseUnavailableError(`database migration failed: ${safeMessage(err)}`, {
        cause: err,
      });
    }
  }
  return handle;
}

type InternalHandle = DatabaseHandle & { migrate(): Promise<void> };

async function openPostgres(
  config: Extract<DatabaseConfig, { kind: 'postgres' }>,
  logger: Logger,
): Promise<InternalHandle> {
  const where = describePostgresUrl(config.url);
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolMax,
    connectionTimeoutMillis: config.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: 'mcp-gateway',
  });
  // An idle client losing its connection emits 'error' on the pool; unhandled, that would
  // crash the process. Readiness reports the outage instead.
  pool.on('error', (err) => logger.warn({ err: safeMessage(err) }, 'postgres idle client error'));
  // A checked-out client (a transaction between two queries) whose connection drops emits
  // 'error' with no pool listener attached: without this one, a database outage during a
  // transaction would crash the process. The transaction's next query fails and rolls back.
  pool.on('connect', (client) => {
    client.on('error', (err) => logger.warn({ err: safeMessage(err) }, 'postgres connection lost'));
  });
  try {
    await pool.query('select 1');
  } catch (err) {
    await pool.end().catch(() => {});
    throw new DatabaseUnavailableError(`cannot connect to PostgreSQL at ${where}: ${safeMessage(err)}`, {
      cause: err,
    });
  }
  const db = drizzlePg(pool, { schema }) as unknown as Database;
  logger.info({ database: where }, 'connected to PostgreSQL');
  return {
    db,
    kind: 'postgres',
    async ping() {
      await pool.query('select 1');
    },
    async migrate() {
      const client = await pool.connect();
      try {
        await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
        try {
          await migratePg(drizzlePg(client), { migrationsFolder: MIGRATIONS_DIR });
        } finally {
          await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
        }
      } finally {
        client.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function openPglite(dir: string, logger: Logger): Promise<InternalHandle> {
  const memory = dir === 'memory://';
  const lockFile = memory ? undefined : `${dir}.lock`;
  if (lockFile) {
    await mkdir(path.dirname(dir), { recursive: true });
    const holder = Number(await readFile(lockFile, 'utf8').catch(() => ''));
    if (holder && holder !== process.pid && pidAlive(holder)) {
      throw new DatabaseUnavailableError(
        `the embedded database at ${dir} is in use by process ${holder}; ` +
          'PGlite serves one process only (stop it, or set DATABASE_URL to share PostgreSQL)',
      );
    }
    await writeFile(lockFile, String(process.pid));
  }
  let client: PGlite;
  try {
    client = memory ? new PGlite() : new PGlite(dir);
    await client.waitReady;
  } catch (err) {
    if (lockFile) await rm(lockFile, { force: true });
    throw new DatabaseUnavailableError(`cannot open the embedded database at ${dir}: ${safeMessage(err)}`, {
      cause: err,
    });
  }
  const db = drizzlePglite(client, { schema }) as unknown as Database;
  logger.info({ database: memory ? 'memory' : dir }, 'opened embedded PGlite database');
  let closed = false;
  return {
    db,
    kind: 'pglite',
    async ping() {
      if (closed) throw new Error('database closed');
      await client.query('select 1');
    },
    async migrate() {
      await migratePglite(drizzlePglite(client), { migrationsFolder: MIGRATIONS_DIR });
    },
    async close() {
      if (closed) return;
      closed = true;
      await client.close();
      if (lockFile) await rm(lockFile, { force: true });
    },
  };
}

/**
 * `db.transaction`, without a pool leak: drizzle (0.45) checks a client out of the pool and
 * sends BEGIN outside its try/finally, so a connection that dies just before BEGIN is never
 * released and the pool loses a slot for good (after DATABASE_POOL_MAX of those, every query
 * waits forever). Here the client is checked out and always released by us; a client whose
 * connection died is dropped by the pool on release. On PGlite it is `db.transaction`.
 */
export async function transaction<T>(
  db: Database,
  fn: (tx: Database) => Promise<T>,
  config?: PgTransactionConfig,
): Promise<T> {
  const pool = (db as unknown as { $client?: unknown }).$client;
  if (!(pool instanceof pg.Pool)) return db.transaction((tx) => fn(tx as unknown as Database), config);
  const client = await pool.connect();
  try {
    const single = drizzlePg(client, { schema }) as unknown as Database;
    return await single.transaction((tx) => fn(tx as unknown as Database), config);
  } finally {
    client.release();
  }
}

/** Runs `select 1` through drizzle; used by tests and readiness. */
export async function selectOne(db: Database): Promise<void> {
  await db.execute(sql`select 1`);
}
