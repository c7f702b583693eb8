// The session directory on a real Redis of its own (a redis-server on a spare port, so it
// can be restarted without touching the shared one): entries expire unless their owner
// refreshes them, a stale entry is removed only while unchanged, and a Redis restarted
// without persistence gets the live sessions back as soon as it answers again.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SessionDirectory } from '../../server/src/features/gateway/index.ts';
import { connectRedis } from '../../server/src/platform/redis/redis.ts';
import { testLogger } from '../support/config.ts';
import { freePort, waitFor } from '../support/mcp.ts';
import { IN_CI } from '../support/services.ts';

const REDIS_SERVER = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
if (!REDIS_SERVER) {
  const message =
    'redis-server is not installed: the session directory test needs its own (apt-get install redis-server)';
  if (IN_CI) throw new Error(`${message}, and CI is set`);
  console.warn(`\n!!! SKIPPING: ${message} !!!\n`);
}

const cleanups: (() => Promise<unknown> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A redis-server without persistence on `port`, answering PING. */
async function startRedis(port: number): Promise<ChildProcess> {
  const proc = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  cleanups.push(() => void proc.kill('SIGKILL'));
  const probe = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return proc;
    } catch {
      probe.disconnect();
      if (Date.now() > deadline) throw new Error(`redis-server did not start on ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe.skipIf(!REDIS_SERVER)('SessionDirectory', () => {
  it('expires a dead owner, forgets only an unchanged entry, and re-registers after a Redis restart', async () => {
    const port = await freePort();
    let server = await startRedis(port);
    const url = `redis://127.0.0.1:${port}`;
    const redis = await connectRedis(url, testLogger());
    cleanups.push(() => redis.disconnect());
    const peek = await connectRedis(url, testLogger());
    cleanups.push(() => peek.disconnect());
    const key = (id: string) => `dir:mcp-session:${id}`;

    // A heartbeat far away: only the reconnection can bring its entries back after the restart.
    const owner = new SessionDirectory({
      redis,
      prefix: 'dir',
      logger: testLogger(),
      ttlMs: 60_000,
      heartbeatMs: 60_000,
    });
    owner.start('http://127.0.0.1:3001/');
    const other = new SessionDirectory({ redis, prefix: 'dir', logger: testLogger() });
    other.start('http://127.0.0.1:3002');

    owner.register('s1', { userId: 'u1', slug: 'every' });
    owner.register('s2', { userId: 'u1', slug: undefined });
    const found = (await until(() => other.lookup('s1'), 's1 registered'))!;
    expect(found.entry).toEqual({
      owner: 'http://127.0.0.1:3001',
      instance: owner.instance,
      userId: 'u1',
      slug: 'every',
    });
    // A stale copy is not removed once the entry was written again.
    const seen = (await other.lookup('s2'))!;
    await peek.set(key('s2'), JSON.stringify({ ...seen.entry, userId: 'u2' }), 'PX', 60_000);
    await other.forget('s2', seen.raw);
    expect(await peek.get(key('s2'))).not.toBeNull();
    await peek.set(key('s2'), seen.raw, 'PX', 60_000);

    // Redis restarts with nothing: the owner writes its sessions back once it reconnects.
    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
    await expect(other.lookup('s1')).rejects.toThrow();
    server = await startRedis(port);
    await waitFor(() => redis.status === 'ready' && peek.status === 'ready', 'clients reconnected', 10_000);
    await until(async () => (await peek.get(key('s1'))) && (await peek.get(key('s2'))), 're-registration');

    // Closing the session removes its entry; a dead owner's entries expire.
    owner.remove('s2');
    await until(async () => (await peek.get(key('s2'))) === null, 's2 removed');
    expect(owner.holds('s1')).toBe(true);
    // A killed owner: its connection is gone, nothing refreshes its entries, they expire.
    const deadRedis = await connectRedis(url, testLogger());
    const dead = new SessionDirectory({ redis: deadRedis, prefix: 'dir', logger: testLogger(), ttlMs: 300 });
    dead.start('http://127.0.0.1:3003');
    dead.register('s3', { userId: 'u3', slug: 'every' });
    await until(async () => (await peek.get(key('s3'))) !== null, 's3 registered');
    // ...while a live owner's entries outlive their TTL through its heartbeat.
    const alive = new SessionDirectory({
      redis,
      prefix: 'dir',
      logger: testLogger(),
      ttlMs: 300,
      heartbeatMs: 100,
    });
    alive.start('http://127.0.0.1:3004');
    alive.register('s4', { userId: 'u4', slug: 'every' });
    deadRedis.disconnect();
    await new Promise((r) => setTimeout(r, 800));
    expect(await peek.get(key('s3'))).toBeNull();
    expect(await peek.get(key('s4'))).not.toBeNull();
    await alive.close();

    await owner.close();
    expect(await peek.get(key('s1'))).toBeNull();
    await other.close();
  });
});

/** Polls `fn` until it resolves truthy; fails naming `what` after `timeoutMs`. */
async function until<T>(fn: () => Promise<T>, what: string, timeoutMs = 3_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
