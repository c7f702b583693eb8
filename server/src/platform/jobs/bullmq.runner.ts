import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobName, JobPayload } from '@gateway/shared';
import type { Logger } from '../logging/logger.ts';
import type { EnqueueOptions, JobRegistry, JobRunner } from './job.registry.ts';
import { inRootSpan } from '../telemetry/tracing.ts';

/** The one queue every job goes through; the job's name selects its handler. */
export const QUEUE_NAME = 'jobs';

/**
 * Runs the registry's jobs on BullMQ. The server process only produces (`consume: false`);
 * the workers process consumes. Both install the schedules (idempotent upserts), so
 * schedules exist whichever starts first.
 */
export class BullMqJobRunner implements JobRunner {
  readonly kind = 'bullmq' as const;
  readonly #registry: JobRegistry;
  readonly #logger: Logger;
  readonly #queue: Queue;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #consume: boolean;
  readonly #concurrency: number;
  #worker: Worker | undefined;
  #workerConnection: Redis | undefined;

  constructor(
    registry: JobRegistry,
    options: { redis: Redis; prefix: string; consume: boolean; concurrency: number; logger: Logger },
  ) {
    this.#registry = registry;
    this.#logger = options.logger.child({ runner: this.kind });
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#consume = options.consume;
    this.#concurrency = options.concurrency;
    this.#queue = new Queue(QUEUE_NAME, { connection: options.redis, prefix: options.prefix });
    this.#queue.on('error', (err) => this.#logger.warn({ err: err.message }, 'queue error'));
  }

  async start(): Promise<void> {
    this.#registry.assertComplete();
    for (const def of this.#registry.all()) {
      if (!def.schedule) continue;
      await this.#queue.upsertJobScheduler(
        `schedule-${def.name}`,
        { every: def.schedule.everyMs },
        { name: def.name, data: def.schedule.payload, opts: this.#jobOptions(def.name) },
      );
    }
    if (!this.#consume) return;
    // A blocking worker needs its own connection.
    this.#workerConnection = this.#redis.duplicate();
    this.#worker = new Worker(QUEUE_NAME, (job) => this.#process(job), {
      connection: this.#workerConnection,
      prefix: this.#prefix,
      concurrency: this.#concurrency,
    });
    this.#worker.on('error', (err) => this.#logger.warn({ err: err.message }, 'worker error'));
    this.#worker.on('failed', (job, err) =>
      this.#logger.error(
        { job: job?.name, jobId: job?.id, attempt: job?.attemptsMade, err: err.message },
        'job failed',
      ),
    );
    await this.#worker.waitUntilReady();
  }

  #jobOptions(name: JobName) {
    const def = this.#registry.get(name);
    return {
      attempts: def?.attempts ?? 3,
      backoff: { type: 'exponential' as const, delay: def?.backoffMs ?? 1_000 },
      removeOnComplete: { age: 3_600, count: 1_000 },
      removeOnFail: { age: 7 * 86_400 },
    };
  }

  async #process(job: Job): Promise<void> {
    const def = this.#registry.get(job.name);
    if (!def) throw new UnrecoverableError(`unknown job ${job.name}`);
    let payload: unknown;
    try {
      payload = this.#registry.parsePayload(def.name, job.data);
    } catch (err) {
      throw new UnrecoverableError(`invalid payload for ${job.name}: ${(err as Error).message}`);
    }
    // A trace per job run (when tracing is on): its log lines and outbound calls belong to it.
    await inRootSpan(`job ${job.name}`, { 'mcp_gateway.job': job.name }, () =>
      def.handler(payload as never, {
        jobId: job.id ?? '',
        attempt: job.attemptsMade + 1,
        runner: this.kind,
        logger: this.#logger.child({ job: job.name, jobId: job.id }),
      }),
    );
  }

  async enqueue<N extends JobName>(
    name: N,
    payload: JobPayload<N>,
    options: EnqueueOptions = {},
  ): Promise<void> {
    if (!this.#registry.get(name)) throw new Error(`unknown job ${name}`);
    const data = this.#registry.parsePayload(name, payload);
    await this.#queue.add(name, data, {
      ...this.#jobOptions(name),
      ...(options.jobId ? { jobId: options.jobId } : {}),
      ...(options.delayMs ? { delay: options.delayMs } : {}),
    });
  }

  async depth() {
    const c = await this.#queue.getJobCounts('waiting', 'active', 'failed', 'delayed', 'prioritized');
    return {
      waiting: (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      failed: c.failed ?? 0,
    };
  }

  async stop(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
    });
    try {
      // worker.close() waits for active jobs; a job still running at the deadline is left
      // locked and BullMQ's stalled-job check hands it to another worker: it is not lost.
      if (this.#worker) {
        const r = await Promise.race([this.#worker.close(), deadline]);
        if (r === 'timeout') {
          this.#logger.warn('jobs still running at shutdown; they will be retried');
          await this.#worker.close(true);
        }
      }
      await this.#queue.close();
    } finally {
      clearTimeout(timer);
      this.#workerConnection?.disconnect();
    }
  }
}
