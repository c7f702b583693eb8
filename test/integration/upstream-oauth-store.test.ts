// Storage and locking under upstream OAuth, on the real databases and Redis: one record per
// owner (server-wide ones included), single-use pending authorizations, compare-and-set
// refresh bookkeeping, and the refresh lock in-process and across Redis connections.
import crypto, { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CredentialsRepository,
  CredentialsRotation,
  CredentialsService,
  InProcessLock,
  pendingAuthorizationsSealedStore,
  RedisLock,
  UpstreamOAuthService,
  type RefreshLock,
} from '../../server/src/features/credentials/index.ts';
import { AuditService, AuditRepository } from '../../server/src/features/audit/index.ts';
import { users } from '../../server/src/features/users/users.schema.ts';
import { Vault } from '../../server/src/platform/crypto/vault.ts';
import { openDatabase, type DatabaseHandle } from '../../server/src/platform/db/database.ts';
import { testLogger, tempDir } from '../support/config.ts';
import { createTestDatabase, engines } from '../support/database.ts';
import { testRedisPrefix } from '../support/redis.ts';
import { hasRedis } from '../support/services.ts';

const logger = testLogger();
const newServerId = () => crypto.randomUUID();
const withRedis = await hasRedis();

describe.each(await engines())('upstream OAuth storage on %s', (engine) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  let opened: Promise<{
    handle: DatabaseHandle;
    repo: CredentialsRepository;
    service: CredentialsService;
    audit: AuditService;
  }>;
  /** One database per engine (migrating one takes seconds); each test uses its own server id and users. */
  const open = () => (opened ??= openOnce());

  async function openOnce(): Promise<{
    handle: DatabaseHandle;
    repo: CredentialsRepository;
    service: CredentialsService;
    audit: AuditService;
  }> {
    const test = await createTestDatabase(engine);
    cleanups.push(() => test.drop());
    const handle = await openDatabase(test.config, logger);
    cleanups.push(() => handle.close());
    const audit = new AuditService(new AuditRepository(handle.db), {
      logger,
      batchSize: 100,
      flushIntervalMs: 20,
      bufferMax: 1000,
      spoolDir: tempDir(),
    });
    cleanups.push(() => audit.stop(1_000));
    const repo = new CredentialsRepository(handle.db);
    return {
      handle,
      repo,
      audit,
      service: new CredentialsService(repo, new Vault([randomBytes(32)]), audit),
    };
  }

  const count = async (handle: DatabaseHandle, serverId: string) =>
    Number(
      (
        (await handle.db.execute(
          sql`select count(*)::int as n from credentials where server_id = ${serverId}`,
        )) as unknown as { rows: { n: number }[] }
      ).rows[0]!.n,
    );

  it('keeps one record per server for static values and the OAuth client, and reads the latest', async () => {
    const { handle, service } = await open();
    const serverId = newServerId();
    await service.putServerStatic(serverId, { 'X-Api-Key': 'first' });
    await service.putServerStatic(serverId, { 'X-Api-Key': 'second' });
    await service.putServerOAuthClient(serverId, { clientId: 'static-1', clientSecret: 's1' });
    await service.putServerOAuthClient(serverId, { clientId: 'static-2', clientSecret: 's2' });
    expect(await service.getServerStatic(serverId)).toEqual({ 'X-Api-Key': 'second' });
    expect(await count(handle, serverId)).toBe(2);
    await service.putServerOAuthClient(serverId, undefined);
    expect(await count(handle, serverId)).toBe(1);
  });

  it('uses a pending authorization once, in time, and only for the user who started it', async () => {
    const { handle, repo } = await open();
    const serverId = newServerId();
    const [alice, bob] = await handle.db
      .insert(users)
      .values([
        { subject: 'test|alice', displayName: 'Alice' },
        { subject: 'test|bob', displayName: 'Bob' },
      ])
      .returning();
    const sealed = { keyId: 'k', wrappedKey: 'w', ciphertext: 'c' };
    const now = new Date();
    const pending = (state: string, expiresAt: Date) =>
      repo.insertPending({
        state,
        userId: alice!.id,
        serverId,
        ...sealed,
        authorizationUrl: 'https://as.example/authorize',
        expiresAt,
      });
    await pending('fresh', new Date(now.getTime() + 60_000));
    await pending('old', new Date(now.getTime() - 1));
    // Only this test writes pending authorizations in this database.
    expect(await repo.consumePending('fresh', bob!.id, now)).toBeUndefined();
    expect((await repo.consumePending('fresh', alice!.id, now))?.state).toBe('fresh');
    expect(await repo.consumePending('fresh', alice!.id, now)).toBeUndefined();
    expect(await repo.consumePending('old', alice!.id, now)).toBeUndefined();
    expect(await repo.deleteExpiredPending(now)).toBe(1);
    expect((await repo.findPending('fresh'))?.usedAt).toBeInstanceOf(Date);
    // Its fake sealed value would not open: leave the shared database to the other tests.
    await handle.db.execute(sql`delete from oauth_pending_authorizations where key_id = 'k'`);
  });

  it('changes a token record only while it holds what was read', async () => {
    const { handle, repo } = await open();
    const serverId = newServerId();
    const [alice] = await handle.db.insert(users).values({ subject: 'test|a', displayName: 'A' }).returning();
    const owner = {
      scope: 'user' as const,
      kind: 'oauth' as const,
      serverId,
      userId: alice!.id,
      threadId: '',
    };
    const soon = new Date(Date.now() + 1_000);
    const first = await repo.upsert(owner, {
      keyId: 'k',
      wrappedKey: 'w',
      ciphertext: 'v1',
      expiresAt: soon,
    });
    expect((await repo.listOAuthExpiring(new Date(Date.now() + 5_000), 10)).map((r) => r.id)).toEqual([
      first.id,
    ]);
    const second = await repo.replaceIfUnchanged(first.id, 'v1', {
      keyId: 'k',
      wrappedKey: 'w',
      ciphertext: 'v2',
      expiresAt: new Date(Date.now() + 3_600_000),
    });
    expect(second?.ciphertext).toBe('v2');
    // A writer that read v1 loses: its refresh and its invalidation are both refused.
    expect(
      await repo.replaceIfUnchanged(first.id, 'v1', { keyId: 'k', wrappedKey: 'w', ciphertext: 'v3' }),
    ).toBeUndefined();
    expect(await repo.markNeedsConsent(first.id, 'v1')).toBe(false);
    expect(await repo.listOAuthExpiring(new Date(Date.now() + 5_000), 10)).toEqual([]);
    expect(await repo.markNeedsConsent(first.id, 'v2')).toBe(true);
    expect((await repo.find(owner))?.status).toBe('needs_consent');
    expect(await repo.listOAuthExpiring(new Date(Date.now() + 7_200_000), 10)).toEqual([]);
  });
  it('re-wraps pending authorizations with every other sealed record after a key change', async () => {
    const { handle, repo, audit } = await open();
    const serverId = newServerId();
    const [carol] = await handle.db.insert(users).values({ subject: 'test|c', displayName: 'C' }).returning();
    const [a, b] = [randomBytes(32), randomBytes(32)];
    const oauth = new UpstreamOAuthService({
      repo,
      vault: new Vault([a]),
      audit,
      logger,
      lock: new InProcessLock(),
      fetch,
      serverById: async () => undefined,
      publicUrl: 'https://gateway.test',
      refreshMarginSeconds: 300,
    });
    await oauth.recordPending({
      target: {
        id: serverId,
        slug: 'crm',
        name: 'CRM',
        threadIsolated: false,
        oauth: { scopes: [] },
        resolvedTransport: { type: 'streamable-http', url: 'https://crm.test/mcp', headers: {} },
      },
      owner: { scope: 'user', kind: 'oauth', serverId, userId: carol!.id, threadId: '' },
      state: `rotate-${serverId}`,
      codeVerifier: 'verifier',
      authorizationUrl: new URL('https://as.test/authorize'),
      via: 'api',
    });
    const rotation = new CredentialsRotation({
      stores: [pendingAuthorizationsSealedStore(repo)],
      vault: new Vault([b, a]),
      audit,
      logger,
    });
    // `failed` would count a record whose additional data the store got wrong: it could not be opened.
    expect(await rotation.rewrapAll({ trigger: 'job' })).toMatchObject({ rewrapped: 1, failed: 0 });
    expect(await rotation.pending()).toBe(0);
  });
});

/** Runs `fn` in `n` concurrent holders of `lock`; returns how many ran. */
async function race(locks: RefreshLock[], name: string): Promise<number> {
  let running = 0;
  let ran = 0;
  await Promise.all(
    locks.map((lock) =>
      lock.run(name, 5_000, async () => {
        running++;
        expect(running).toBe(1);
        await new Promise((r) => setTimeout(r, 50));
        running--;
        ran++;
      }),
    ),
  );
  return ran;
}

describe('refresh lock', () => {
  it('in-process: one of several concurrent runs, then free again', async () => {
    const lock = new InProcessLock();
    expect(await race([lock, lock, lock], 'token-1')).toBe(1);
    expect(await race([lock], 'token-1')).toBe(1);
    // Other names do not wait for each other.
    const [a, b] = await Promise.all([race([lock], 'token-a'), race([lock], 'token-b')]);
    expect(a + b).toBe(2);
  });

  it('in-process: a lease that outlived its time is taken over', async () => {
    const lock = new InProcessLock();
    let release: () => void = () => {};
    const stuck = lock.run('token', 50, () => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 80));
    expect((await lock.run('token', 50, async () => 'second')).ran).toBe(true);
    release();
    await stuck;
  });

  it.runIf(withRedis)(
    'Redis: one run across connections (processes), and no release of a lease taken over',
    async () => {
      const prefix = testRedisPrefix();
      const connections = [new Redis(prefix.url), new Redis(prefix.url), new Redis(prefix.url)];
      try {
        const locks = connections.map((c) => new RedisLock(c, prefix.prefix));
        expect(await race(locks, 'token-1')).toBe(1);
        expect(await race(locks.slice(0, 1), 'token-1')).toBe(1);
        // A holder whose lease expired must not free the lease its successor took.
        let release: () => void = () => {};
        const slow = locks[0]!.run('token-2', 100, () => new Promise<void>((r) => (release = r)));
        await new Promise((r) => setTimeout(r, 150));
        let releaseSecond: () => void = () => {};
        const second = locks[1]!.run('token-2', 5_000, () => new Promise<void>((r) => (releaseSecond = r)));
        await new Promise((r) => setTimeout(r, 50));
        release();
        await slow;
        expect((await locks[2]!.run('token-2', 5_000, async () => 'third')).ran).toBe(false);
        releaseSecond();
        expect((await second).ran).toBe(true);
      } finally {
        for (const c of connections) c.disconnect();
        await prefix.clean();
      }
    },
  );
});
