// Revoking an OAuth grant stops its access tokens on every replica at once: each replica
// keeps what it knows of grants in memory (the check runs on every MCP request), and a
// revocation on one reaches the others through the Redis change feed.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthRepository, OAuthGrantStatus } from '../../server/src/features/auth/index.ts';
import { openDatabase, type DatabaseHandle } from '../../server/src/platform/db/database.ts';
import { LocalChangeFeed, RedisChangeFeed } from '../../server/src/platform/redis/changes.ts';
import { testLogger } from '../support/config.ts';
import { createTestDatabase, engines, type TestDatabase } from '../support/database.ts';
import { testRedisPrefix } from '../support/redis.ts';
import { hasRedis } from '../support/services.ts';

const engine = (await engines()).at(-1)!;

describe.skipIf(!(await hasRedis()))(`OAuth grant status across replicas (${engine}, Redis)`, () => {
  const redis = testRedisPrefix();
  let db: TestDatabase;
  let handle: DatabaseHandle;
  let repo: AuthRepository;
  const clients: Redis[] = [];
  const feeds: RedisChangeFeed[] = [];

  beforeAll(async () => {
    db = await createTestDatabase(engine);
    handle = await openDatabase(db.config, testLogger());
    repo = new AuthRepository(handle.db);
  });

  afterAll(async () => {
    await Promise.all(feeds.map((f) => f.close()));
    for (const c of clients) c.disconnect();
    await handle?.close();
    await db?.drop();
    await redis.clean();
  });

  /** One replica's view: its own Redis connection, change feed and grant status. */
  async function replica() {
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    clients.push(client);
    const feed = new RedisChangeFeed(client, redis.prefix, testLogger());
    feeds.push(feed);
    await feed.ready();
    return new OAuthGrantStatus({ repo, changes: feed });
  }

  const storeGrant = (id: string, expiresAt: Date) =>
    repo.oauthUpsert({
      key: `Grant:${id}`,
      model: 'Grant',
      payload: { accountId: 'user-1', clientId: 'client-1' },
      expiresAt,
    });

  it('a grant revoked on one replica is refused on the other at once, well before its cache would expire', async () => {
    const [a, b] = [await replica(), await replica()];
    await storeGrant('grant-1', new Date(Date.now() + 3_600_000));
    expect(await a.isLive('grant-1')).toBe(true);
    expect(await b.isLive('grant-1')).toBe(true);

    // What OAuthServer.revokeGrant and oidc-provider's revocation do: delete the rows, then say so.
    await repo.oauthRevokeByGrantId('grant-1');
    await repo.oauthDestroy('Grant:grant-1');
    a.revoked('grant-1');
    expect(await a.isLive('grant-1')).toBe(false);
    const deadline = Date.now() + 2_000;
    while ((await b.isLive('grant-1')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(await b.isLive('grant-1')).toBe(false);
  });

  it('without a change message a replica keeps believing its cached answer (so the feed is what told it)', async () => {
    const alone = new OAuthGrantStatus({ repo, changes: new LocalChangeFeed() });
    await storeGrant('grant-2', new Date(Date.now() + 3_600_000));
    expect(await alone.isLive('grant-2')).toBe(true);
    await repo.oauthDestroy('Grant:grant-2');
    expect(await alone.isLive('grant-2')).toBe(true);
  });

  it('an unknown or expired grant is not live', async () => {
    const a = await replica();
    await storeGrant('grant-3', new Date(Date.now() - 1_000));
    expect(await a.isLive('grant-3')).toBe(false);
    expect(await a.isLive('no-such-grant')).toBe(false);
  });
});
