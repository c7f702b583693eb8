import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { DatabaseConfig } from '../../server/src/platform/config/config.ts';
import { hasPostgres, POSTGRES_ADMIN_URL } from './services.ts';

export type Engine = 'pglite' | 'postgres';

/** The engines this run tests against: PGlite always, PostgreSQL when it is reachable. */
export async function engines(): Promise<Engine[]> {
  return (await hasPostgres()) ? ['pglite', 'postgres'] : ['pglite'];
}

export interface TestDatabase {
  readonly config: DatabaseConfig;
  /** For child processes: the DATABASE_URL to set (undefined on PGlite). */
  readonly url: string | undefined;
  drop(): Promise<void>;
}

/**
 * A database of its own for one test file: a fresh PostgreSQL database (dropped after), or
 * an in-memory PGlite (or one in `pgliteDir` when given).
 */
export async function createTestDatabase(engine: Engine, pgliteDir?: string): Promise<TestDatabase> {
  if (engine === 'pglite') {
    return {
      config: { kind: 'pglite', dir: pgliteDir ?? 'memory://' },
      url: undefined,
      async drop() {},
    };
  }
  const name = `gw_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    config: { kind: 'postgres', url: url.toString(), poolMax: 5, connectTimeoutMs: 5_000 },
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}
