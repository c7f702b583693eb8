import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../server/src/runtime.ts';
import { connectChat } from '../support/chat.ts';
import { testConfig, testLogger } from '../support/config.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { lastToolResult, startFakeModel, type FakeModel } from '../support/llm.ts';
import { everythingStdio } from '../support/mcp.ts';
import { testRedisPrefix } from '../support/redis.ts';
import { ADMIN_TOKEN, api, createUserKey, grant } from '../support/server.ts';
import { hasPostgres, hasRedis } from '../support/services.ts';

const ready = (await hasPostgres()) && (await hasRedis());

// Two server replicas on one PostgreSQL and one Redis, as in the scale-out deployment: a
// user's browser follows the thread on one replica while the turn runs on the other.
describe.skipIf(!ready)('chat across two replicas (PostgreSQL and Redis)', () => {
  const redis = testRedisPrefix();
  let db: TestDatabase;
  let model: FakeModel;
  let a: RunningServer;
  let b: RunningServer;

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    model = await startFakeModel();
    const env = {
      DATABASE_URL: db.url!,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      // Replicas share the master key and the session secret, as a deployment's do.
      ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      SESSION_SECRET: randomBytes(32).toString('hex'),
      ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
      OPENAI_BASE_URL: model.baseUrl,
      CHAT_MODEL: 'scripted-model',
      AUDIT_FLUSH_INTERVAL_MS: '20',
    };
    a = await startServer(testConfig(env), testLogger());
    b = await startServer(testConfig(env), testLogger());
  });
  afterAll(async () => {
    await Promise.allSettled([a?.stop(), b?.stop()]);
    await model?.close();
    await db?.drop();
    await redis.clean();
  });

  it('streams a turn running on one replica to a socket on the other, and takes its approval from there; changes reach every replica at once', async () => {
    const admin = api(a.url, ADMIN_TOKEN);
    expect(
      (await admin.post('/api/servers', everythingStdio('everything', { sensitiveTools: ['get-sum'] })))
        .status,
    ).toBe(201);
    await grant(admin, 'everything');
    const user = await createUserKey(a, 'replica-user');
    const principal = {
      userId: user.user.id,
      displayName: 'replica-user',
      role: 'user' as const,
      via: 'api_key' as const,
      groups: ['replica-team'],
    };
    await expect.poll(() => b.services.registry.get('everything')).toBeDefined();

    // A change on A reaches B's in-memory copies through Redis at once, well before B's own
    // reloads would (the catalog's copy lives 5 s, the rules are reloaded every 10 s).
    await b.services.registry.list();
    expect((await admin.patch('/api/servers/everything', { description: 'changed on A' })).status).toBe(200);
    await expect
      .poll(async () => (await b.services.registry.get('everything'))?.description, { timeout: 2_000 })
      .toBe('changed on A');
    const onB = (await b.services.registry.get('everything'))!;
    await b.services.access.reload();
    const other = await admin.post('/api/servers', everythingStdio('everything-team'));
    expect(other.status).toBe(201);
    await b.services.access.reload();
    await expect.poll(() => b.services.registry.get('everything-team')).toBeDefined();
    const team = (await b.services.registry.get('everything-team'))!;
    expect(b.services.access.canUseServer(principal, team)).toBe(false);
    await grant(admin, 'everything-team', { subjectType: 'group', subject: 'replica-team' });
    await expect.poll(() => b.services.access.canUseServer(principal, team), { timeout: 2_000 }).toBe(true);
    expect(b.services.access.canUseServer(principal, onB)).toBe(true);
    const thread = (await user.client.post('/api/threads', {})).body.id as string;

    const watcher = await connectChat(a.url, user.key);
    const sender = await connectChat(b.url, user.key);
    try {
      expect(await watcher.socket.emitWithAck('thread:join', { threadId: thread })).toEqual({ ok: true });
      model.script({ toolCalls: [{ name: 'everything__get-sum', arguments: { a: 20, b: 22 } }] }, (req) => ({
        text: `It is ${lastToolResult(req)}`,
      }));
      // Sent on B: the turn runs on B.
      expect((await sender.socket.emitWithAck('message:send', { threadId: thread, text: 'sum?' })).ok).toBe(
        true,
      );
      const ask = await watcher.next(
        (e) => e.name === 'tool:update' && e.body.call.status === 'awaiting_approval',
        'the approval request on replica A',
      );
      // Approved on A: the answer travels to B through Redis.
      expect(
        await watcher.socket.emitWithAck('tool:approve', {
          threadId: thread,
          callId: ask.body.call.id,
          approve: true,
        }),
      ).toEqual({ ok: true });
      await watcher.next(
        (e) => e.name === 'run:state' && e.body.running === false,
        'the end of the turn on A',
      );
      const final = watcher.events.filter((e) => e.name === 'message:new').at(-1);
      expect(final?.body.message.text).toContain('42');
      // A second turn in the same thread, sent on A while B's lock is free again, runs fine.
      model.script({ text: 'again' });
      expect(
        (await watcher.socket.emitWithAck('message:send', { threadId: thread, text: 'again?' })).ok,
      ).toBe(true);
      await watcher.next(
        (e) => e.name === 'message:new' && e.body.message.text === 'again',
        'the second turn’s answer',
      );
    } finally {
      watcher.socket.close();
      sender.socket.close();
    }
  });
});
