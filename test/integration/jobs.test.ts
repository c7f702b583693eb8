import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BullMqJobRunner } from '../../server/src/platform/jobs/bullmq.runner.ts';
import { InProcessJobRunner } from '../../server/src/platform/jobs/inprocess.runner.ts';
import { JobRegistry, type JobContext, type JobRunner } from '../../server/src/platform/jobs/job.registry.ts';
import { testLogger } from '../support/config.ts';
import { testRedisPrefix } from '../support/redis.ts';
import { hasRedis } from '../support/services.ts';

const logger = testLogger();

/** A registry whose heartbeat handler records calls and fails on demand. */
function recordingRegistry(options: { failTimes?: number; delayMs?: number; everyMs?: number } = {}) {
  const calls: { source: string; ctx: JobContext }[] = [];
  let failuresLeft = options.failTimes ?? 0;
  // A registry of the heartbeat job alone: these tests are about the runners, not the jobs.
  const registry = new JobRegistry(['maintenance.heartbeat']).define({
    name: 'maintenance.heartbeat',
    attempts: 3,
    backoffMs: 50,
    ...(options.everyMs ? { schedule: { everyMs: options.everyMs, payload: { source: 'schedule' } } } : {}),
    async handler(payload, ctx) {
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
      if (failuresLeft > 0) {
        failuresLeft--;
        throw new Error('planned failure');
      }
      calls.push({ source: payload.source, ctx });
    },
  });
  return { registry, calls };
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const redisUp = await hasRedis();
const prefixes: ReturnType<typeof testRedisPrefix>[] = [];
const connections: Redis[] = [];

type Factory = (registry: JobRegistry) => Promise<{ producer: JobRunner; consumer: JobRunner }>;

const runners: [string, Factory][] = [
  [
    'in-process',
    async (registry) => {
      const runner = new InProcessJobRunner(registry, { logger, concurrency: 2 });
      return { producer: runner, consumer: runner };
    },
  ],
];
if (redisUp) {
  runners.push([
    'bullmq',
    async (registry) => {
      const p = testRedisPrefix();
      prefixes.push(p);
      const redis = new Redis(p.url, { maxRetriesPerRequest: null });
      connections.push(redis);
      // Two runners as in production: the server produces, the workers process consumes.
      const producer = new BullMqJobRunner(registry, {
        redis,
        prefix: p.prefix,
        consume: false,
        concurrency: 2,
        logger,
      });
      const consumer = new BullMqJobRunner(registry, {
        redis,
        prefix: p.prefix,
        consume: true,
        concurrency: 2,
        logger,
      });
      return { producer, consumer };
    },
  ]);
}

afterAll(async () => {
  for (const p of prefixes) await p.clean();
  for (const c of connections) c.disconnect();
});

describe.each(runners)('%s job runner', (kind, make) => {
  let stops: JobRunner[] = [];
  beforeAll(() => {
    stops = [];
  });
  afterAll(async () => {
    for (const r of stops) await r.stop(2_000);
  });

  async function started(registry: JobRegistry) {
    const { producer, consumer } = await make(registry);
    await producer.start();
    if (consumer !== producer) await consumer.start();
    stops.push(producer);
    if (consumer !== producer) stops.push(consumer);
    return { producer, consumer };
  }

  it('runs an enqueued job with its validated payload', async () => {
    const { registry, calls } = recordingRegistry();
    const { producer } = await started(registry);
    await producer.enqueue('maintenance.heartbeat', { source: 'api' });
    await until(() => calls.length === 1);
    expect(calls[0]!.source).toBe('api');
    expect(calls[0]!.ctx.runner).toBe(kind);
    expect(calls[0]!.ctx.attempt).toBe(1);
  });

  it('rejects an invalid payload at enqueue, naming the field', async () => {
    const { registry } = recordingRegistry();
    const { producer } = await started(registry);
    await expect(
      producer.enqueue('maintenance.heartbeat', { source: 42 } as unknown as { source: string }),
    ).rejects.toThrow(/source/);
  });

  it('retries a failing job with backoff until it succeeds', async () => {
    const { registry, calls } = recordingRegistry({ failTimes: 2 });
    const { producer } = await started(registry);
    await producer.enqueue('maintenance.heartbeat', { source: 'retry' });
    await until(() => calls.length === 1);
    expect(calls[0]!.ctx.attempt).toBe(3);
  });

  it('runs a job once for one idempotency key', async () => {
    const { registry, calls } = recordingRegistry({ delayMs: 200 });
    const { producer } = await started(registry);
    await Promise.all([
      producer.enqueue('maintenance.heartbeat', { source: 'once' }, { jobId: 'same-key' }),
      producer.enqueue('maintenance.heartbeat', { source: 'once' }, { jobId: 'same-key' }),
    ]);
    await until(() => calls.length >= 1);
    await new Promise((r) => setTimeout(r, 400));
    expect(calls).toHaveLength(1);
  });

  it('runs scheduled jobs repeatedly', async () => {
    const { registry, calls } = recordingRegistry({ everyMs: 150 });
    await started(registry);
    await until(() => calls.filter((c) => c.source === 'schedule').length >= 2);
  });

  it('lets a running job finish on stop', async () => {
    const { registry, calls } = recordingRegistry({ delayMs: 500 });
    const { producer, consumer } = await started(registry);
    await producer.enqueue('maintenance.heartbeat', { source: 'drain' });
    const depth = async () => {
      const d = await consumer.depth();
      return d.active;
    };
    const deadline = Date.now() + 5_000;
    while ((await depth()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await consumer.stop(5_000);
    expect(calls.map((c) => c.source)).toContain('drain');
  });

  it('refuses to start when a declared job has no handler', async () => {
    const { producer } = await make(new JobRegistry());
    await expect(producer.start()).rejects.toThrow(/jobs without a handler: maintenance\.heartbeat/);
  });
});
