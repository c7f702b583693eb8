import { rm } from 'node:fs/promises';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { MaintenanceRepository } from '../../server/src/features/maintenance/index.ts';
import { users } from '../../server/src/features/users/users.schema.ts';
import { openDatabase, DatabaseUnavailableError } from '../../server/src/platform/db/database.ts';
import { testLogger, tempDir } from '../support/config.ts';
import { createTestDatabase, engines } from '../support/database.ts';

const logger = testLogger();

describe.each(await engines())('database on %s', (engine) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('migrates, and migrating again changes nothing', async () => {
    const test = await createTestDatabase(
      engine,
      engine === 'pglite' ? path.join(tempDir(), 'pg') : undefined,
    );
    cleanups.push(() => test.drop());
    const first = await openDatabase(test.config, logger);
    const tables = async () =>
      (
        (await first.db.execute(
          sql`select table_name from information_schema.tables where table_schema = 'public' order by 1`,
        )) as unknown as { rows: { table_name: string }[] }
      ).rows.map((r) => r.table_name);
    const before = await tables();
    expect(before).toEqual(expect.arrayContaining(['users', 'job_heartbeats']));
    await first.db.insert(users).values({ subject: 'local|alice', displayName: 'Alice' });
    await first.close();

    const second = await openDatabase(test.config, logger);
    cleanups.push(() => second.close());
    const rows = await second.db.select().from(users).where(eq(users.subject, 'local|alice'));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.role).toBe('user');
    expect(rows[0]!.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('enforces unique subjects, and a failed insert leaves the table unchanged', async () => {
    const test = await createTestDatabase(engine);
    cleanups.push(() => test.drop());
    const handle = await openDatabase(test.config, logger);
    cleanups.push(() => handle.close());
    await handle.db.insert(users).values({ subject: 'idp|1', displayName: 'One' });
    await expect(handle.db.insert(users).values({ subject: 'idp|1', displayName: 'Dup' })).rejects.toThrow();
    const all = await handle.db.select().from(users);
    expect(all.map((u) => u.displayName)).toEqual(['One']);
  });

  it('records heartbeats, counting beats per runner', async () => {
    const test = await createTestDatabase(engine);
    cleanups.push(() => test.drop());
    const handle = await openDatabase(test.config, logger);
    cleanups.push(() => handle.close());
    const repo = new MaintenanceRepository(handle.db);
    await repo.recordHeartbeat('r1', 'in-process', 'test');
    await repo.recordHeartbeat('r1', 'in-process', 'test');
    await repo.recordHeartbeat('r2', 'bullmq', 'test');
    const beats = await repo.listHeartbeats();
    expect(Object.fromEntries(beats.map((b) => [b.runnerId, b.beats]))).toEqual({ r1: 2, r2: 1 });
  });
});

describe('PGlite data directory', () => {
  it('refuses a second opener while the first holds it, and frees it on close', async () => {
    const dir = path.join(tempDir(), 'pglite');
    const first = await openDatabase({ kind: 'pglite', dir }, logger);
    // A lock file held by another live process (our parent) means "in use".
    const { writeFile } = await import('node:fs/promises');
    await writeFile(`${dir}.lock`, String(process.ppid));
    await expect(openDatabase({ kind: 'pglite', dir }, logger)).rejects.toThrow(
      /in use by process \d+; PGlite serves one process only/,
    );
    await writeFile(`${dir}.lock`, String(process.pid));
    await first.close();
    const again = await openDatabase({ kind: 'pglite', dir }, logger);
    await again.close();
    await rm(path.dirname(dir), { recursive: true, force: true });
  });
});

describe('PostgreSQL connection failures', () => {
  it('fails fast with a message naming the host and hiding the password', async () => {
    const error = await openDatabase(
      { kind: 'postgres', url: 'postgres://gw:hunter2@127.0.0.1:1/gw', poolMax: 1, connectTimeoutMs: 2_000 },
      logger,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseUnavailableError);
    expect((error as Error).message).toMatch(/^cannot connect to PostgreSQL at 127\.0\.0\.1:1\/gw: /);
    expect((error as Error).message).not.toContain('hunter2');
  });
});
