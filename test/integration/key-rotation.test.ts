// Master-key rotation of the credentials vault, on PGlite and PostgreSQL: secrets sealed
// under key A keep working once B is current (A still loaded), `npm run keys:rotate` (beside
// a running server on PostgreSQL) or POST /api/admin/keys/rotate (the way on PGlite) re-wraps
// everything under B, a second run changes nothing, and afterwards B alone opens every record.
// The next rotation is done by the credentials.rewrap job the server queues at start-up.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyRotationReport } from '@gateway/shared';
import { aad } from '../../server/src/features/credentials/credentials.service.ts';
import { Vault } from '../../server/src/platform/crypto/vault.ts';
import { startServer, type RunningServer } from '../../server/src/runtime.ts';
import { tempDir, testConfig, testLogger } from '../support/config.ts';
import { createTestDatabase, engines, type TestDatabase } from '../support/database.ts';
import { auditSince, connectMcp, everythingStdio, registerServer, text } from '../support/mcp.ts';
import { ROOT } from '../support/process.ts';
import { ADMIN_TOKEN, api, createUserKey } from '../support/server.ts';

const newKey = () => randomBytes(32).toString('base64');
const keyIdOf = (key: string) => new Vault([Buffer.from(key, 'base64')]).currentKeyId;

/** A credentials row as a table dump shows it. */
interface Row {
  id: string;
  scope: 'user' | 'server';
  kind: 'values' | 'oauth';
  server_id: string;
  user_id: string | null;
  thread_id: string;
  key_id: string;
  wrapped_key: string;
  ciphertext: string;
}

/** Runs `npm run keys:rotate`'s entry with `args`, as an operator's shell would. */
function runCli(args: string[], env: Record<string, string | undefined>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const proc = spawn(process.execPath, [path.join(ROOT, 'scripts/keys-rotate.ts'), ...args], {
      cwd: ROOT,
      // eslint-disable-next-line no-restricted-properties -- tests read their own environment
      env: { PATH: process.env['PATH'], NODE_ENV: 'test', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

it('keys:rotate --help explains where it can run', async () => {
  const help = await runCli(['--help'], {});
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/ENCRYPTION_PREVIOUS_KEYS/);
  expect(help.stdout).toMatch(/PostgreSQL.*beside running servers/s);
  expect(help.stdout).toMatch(/POST \/api\/admin\/keys\/rotate/);
  const bad = await runCli(['--batch-size', 'lots'], {});
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/--batch-size/);
});

describe.each(await engines())('master-key rotation on %s', (engine) => {
  const A = newKey();
  const B = newKey();
  const C = newKey();
  const dataDir = tempDir();
  const secrets = {
    static: `static-${randomUUID()}`,
    alice: `alice-${randomUUID()}`,
    aliceThread: `alice-thread-${randomUUID()}`,
    bob: `bob-${randomUUID()}`,
    carol: `carol-${randomUUID()}`,
  };
  const keys: Record<'alice' | 'bob' | 'carol', string> = { alice: '', bob: '', carol: '' };
  let db: TestDatabase;
  let server: RunningServer | undefined;
  let admin: ReturnType<typeof api>;

  const envFor = (keysEnv: Record<string, string>) => ({
    DATA_DIR: dataDir,
    ...(db.url ? { DATABASE_URL: db.url } : {}),
    ...keysEnv,
  });

  async function start(keysEnv: Record<string, string>) {
    server = await startServer(
      testConfig({
        ...envFor(keysEnv),
        ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
        AUDIT_FLUSH_INTERVAL_MS: '20',
        // Keep the health job quiet: this file is about the vault.
        HEALTH_CHECK_INTERVAL_MS: '3600000',
      }),
      testLogger(),
    );
    admin = api(server.url, ADMIN_TOKEN);
  }

  async function stop() {
    await server?.stop();
    server = undefined;
  }

  async function dump(table: 'credentials' | 'sealed_settings' | 'audit_events'): Promise<Row[]> {
    const result = await server!.core.database.db.execute(sql.raw(`select * from ${table} order by 1`));
    return (result as unknown as { rows: Row[] }).rows;
  }

  /** What server-everything sees in its environment for `key`'s user (the gateway opened the vault). */
  async function upstreamEnv(key: string): Promise<Record<string, string>> {
    const c = await connectMcp(`${server!.url}/mcp/vault-ev`, key);
    try {
      return JSON.parse(text(await c.client.callTool({ name: 'get-env', arguments: {} }))) as Record<
        string,
        string
      >;
    } finally {
      await c.close();
    }
  }

  /** Every vault-sealed row: users' and servers' credentials, and the gateway's own sealed settings. */
  async function sealedRows(): Promise<(Row & { name?: string })[]> {
    return [...(await dump('credentials')), ...(await dump('sealed_settings'))];
  }

  const keyIds = async () => new Set((await sealedRows()).map((r) => r.key_id));

  async function rotateViaApi(batchSize: number): Promise<KeyRotationReport> {
    const res = await admin.post('/api/admin/keys/rotate', { batchSize });
    expect(res.status).toBe(200);
    return res.body as KeyRotationReport;
  }

  beforeAll(async () => {
    db = await createTestDatabase(engine);
  });

  afterAll(async () => {
    await stop();
    await db?.drop();
  });

  it('seals every secret under key A', async () => {
    await start({ ENCRYPTION_KEY: A });
    const def = everythingStdio('vault-ev');
    const withSecrets = {
      ...def,
      transport: { ...def.transport, env: { STATIC_SECRET: secrets.static } },
      credentialFields: [{ name: 'USER_TOKEN', kind: 'env', required: true }],
    };
    await registerServer(admin, withSecrets);
    for (const name of ['alice', 'bob', 'carol'] as const) {
      const u = await createUserKey(server!, name);
      keys[name] = u.key;
      const put = await u.client.put('/api/servers/vault-ev/credentials', {
        values: { USER_TOKEN: secrets[name] },
      });
      expect(put.status).toBe(200);
    }
    const alice = api(server!.url, keys.alice);
    const threadId = (await alice.post('/api/threads', { title: 'vault' })).body.id as string;
    const thread = await alice.put('/api/servers/vault-ev/credentials', {
      values: { USER_TOKEN: secrets.aliceThread },
      threadId,
    });
    expect(thread.status).toBe(200);
    expect(await dump('credentials')).toHaveLength(5);
    // The identity feature's sealed settings (session and OAuth signing keys) are sealed too.
    expect((await dump('sealed_settings')).length).toBeGreaterThan(0);
    expect(await keyIds()).toEqual(new Set([keyIdOf(A)]));
    expect(await upstreamEnv(keys.alice)).toMatchObject({
      USER_TOKEN: secrets.alice,
      STATIC_SECRET: secrets.static,
    });
    await stop();
  });

  it('keeps reading them with B current and A previous, before any re-wrap', async () => {
    await start({ ENCRYPTION_KEY: B, ENCRYPTION_PREVIOUS_KEYS: A, ENCRYPTION_REWRAP_ON_START: 'false' });
    expect(await keyIds()).toEqual(new Set([keyIdOf(A)]));
    expect(await upstreamEnv(keys.bob)).toMatchObject({
      USER_TOKEN: secrets.bob,
      STATIC_SECRET: secrets.static,
    });
  });

  it('refuses a rotation request from a non-admin or with a bad body, changing nothing', async () => {
    const asUser = await api(server!.url, keys.carol).post('/api/admin/keys/rotate', {});
    expect(asUser.status).toBe(403);
    const bad = await admin.post('/api/admin/keys/rotate', { batchSize: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toBe('body.batchSize');
    expect(await keyIds()).toEqual(new Set([keyIdOf(A)]));
  });

  it(
    engine === 'postgres'
      ? 're-wraps everything under B with keys:rotate, beside the running server'
      : 're-wraps everything under B through the running server (the CLI cannot open PGlite meanwhile)',
    async () => {
      const since = new Date();
      const before = await sealedRows();
      const total = before.length;
      const cliEnv = envFor({ ENCRYPTION_KEY: B, ENCRYPTION_PREVIOUS_KEYS: A });
      let report: KeyRotationReport;
      if (engine === 'postgres') {
        const cli = await runCli(['--batch-size', '2'], cliEnv);
        expect(cli.stderr).toBe('');
        expect(cli.code).toBe(0);
        report = JSON.parse(cli.stdout) as KeyRotationReport;
      } else {
        const cli = await runCli([], cliEnv);
        expect(cli.code).toBe(1);
        expect(cli.stderr).toMatch(/in use by process/);
        expect(cli.stderr).toMatch(/POST \/api\/admin\/keys\/rotate/);
        report = await rotateViaApi(2);
      }
      expect(report).toMatchObject({
        currentKeyId: keyIdOf(B),
        total,
        alreadyCurrent: 0,
        rewrapped: total,
        skipped: 0,
        failed: 0,
        missingKeyIds: [],
      });
      const after = await sealedRows();
      expect(await keyIds()).toEqual(new Set([keyIdOf(B)]));
      for (const row of after) {
        const old = before.find((r) => (r.id ?? r.name) === (row.id ?? row.name))!;
        // Only the wrapped data key changed: the secret was never re-encrypted.
        expect(row.ciphertext).toBe(old.ciphertext);
        expect(row.wrapped_key).not.toBe(old.wrapped_key);
      }
      // Reads keep working in the server that was running all along.
      expect(await upstreamEnv(keys.carol)).toMatchObject({ USER_TOKEN: secrets.carol });

      // Running it again is a no-op.
      const again =
        engine === 'postgres'
          ? (JSON.parse((await runCli([], cliEnv)).stdout) as KeyRotationReport)
          : await rotateViaApi(200);
      expect(again).toMatchObject({ total, alreadyCurrent: total, rewrapped: 0, failed: 0 });
      expect((await sealedRows()).map((r) => r.wrapped_key)).toEqual(after.map((r) => r.wrapped_key));

      // One audit event per run, with counts only.
      const trigger = engine === 'postgres' ? 'cli' : 'api';
      const deadline = Date.now() + 5_000;
      let events = await auditSince(admin, since, { action: 'credentials.rewrap' });
      while (events.length < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        events = await auditSince(admin, since, { action: 'credentials.rewrap' });
      }
      expect(events).toHaveLength(2);
      expect(events.map((e) => e.status)).toEqual(['ok', 'ok']);
      expect(events.map((e) => (e.details as { rewrapped: number }).rewrapped).sort()).toEqual([0, total]);
      expect(events.every((e) => (e.details as { trigger: string }).trigger === trigger)).toBe(true);
    },
  );

  it('never stores a secret in plaintext, nor a value in the rotation audit events', async () => {
    // (Tool results are audited as the upstream returned them: get-env echoes its environment
    // into the mcp events on purpose, so only the vault's own tables are dumped here.)
    const sealed = JSON.stringify(await sealedRows());
    const rotationEvents = JSON.stringify(
      await auditSince(admin, new Date(0), { action: 'credentials.rewrap' }),
    );
    for (const value of Object.values(secrets)) {
      expect(sealed).not.toContain(value);
      expect(rotationEvents).not.toContain(value);
    }
    if (engine === 'pglite') {
      // The credentials table's file on disk, byte for byte.
      const result = await server!.core.database.db.execute(
        sql`select pg_relation_filepath('credentials') as file`,
      );
      const file = (result as unknown as { rows: { file: string }[] }).rows[0]!.file;
      await stop();
      const bytes = readFileSync(path.join(dataDir, 'pglite', file));
      expect(bytes.length).toBeGreaterThan(0);
      for (const value of Object.values(secrets)) expect(bytes.includes(value)).toBe(false);
    }
    await stop();
  });

  it('opens every record with B alone afterwards', async () => {
    await start({ ENCRYPTION_KEY: B });
    const vault = new Vault([Buffer.from(B, 'base64')]);
    // The server started with B alone: its sealed settings (session and signing keys) opened.
    const opened = (await dump('credentials')).map(
      (r) =>
        JSON.parse(
          vault.open(
            { keyId: r.key_id, wrappedKey: r.wrapped_key, ciphertext: r.ciphertext },
            aad({
              scope: r.scope,
              kind: r.kind,
              serverId: r.server_id,
              userId: r.user_id,
              threadId: r.thread_id,
            }),
          ),
        ) as Record<string, string>,
    );
    expect(opened.flatMap((o) => Object.values(o)).sort()).toEqual(Object.values(secrets).sort());
    expect(await upstreamEnv(keys.alice)).toMatchObject({
      USER_TOKEN: secrets.alice,
      STATIC_SECRET: secrets.static,
    });
    await stop();
  });

  it('re-wraps in the background after the next key change (the start-up job)', async () => {
    const since = new Date();
    await start({ ENCRYPTION_KEY: C, ENCRYPTION_PREVIOUS_KEYS: B });
    const deadline = Date.now() + 10_000;
    let ids = new Set<string>();
    while (Date.now() < deadline) {
      ids = await keyIds();
      if (ids.size === 1 && ids.has(keyIdOf(C))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(ids).toEqual(new Set([keyIdOf(C)]));
    let events = await auditSince(admin, since, { action: 'credentials.rewrap' });
    while (!events.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      events = await auditSince(admin, since, { action: 'credentials.rewrap' });
    }
    const total = (await sealedRows()).length;
    expect(events[0]).toMatchObject({ status: 'ok', details: { trigger: 'job', rewrapped: total, total } });
    expect(await upstreamEnv(keys.bob)).toMatchObject({ USER_TOKEN: secrets.bob });
  });

  it.runIf(engine === 'postgres')(
    'keys:rotate without the old key reports what it cannot open, exits 1 and changes nothing',
    async () => {
      const before = await sealedRows();
      const cli = await runCli([], envFor({ ENCRYPTION_KEY: newKey() }));
      expect(cli.code).toBe(1);
      expect(JSON.parse(cli.stdout)).toMatchObject({
        total: before.length,
        rewrapped: 0,
        failed: before.length,
        missingKeyIds: [keyIdOf(C)],
      });
      expect(cli.stderr).toMatch(/could not be opened.*not in ENCRYPTION_PREVIOUS_KEYS/);
      expect((await sealedRows()).map((r) => r.wrapped_key)).toEqual(before.map((r) => r.wrapped_key));
    },
  );
});
