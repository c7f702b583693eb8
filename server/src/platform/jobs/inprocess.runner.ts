import { randomUUID } from 'node:crypto';
import type { JobName, JobPayload } from '@gateway/shared';
import type { Logger } from '../logging/logger.ts';
import type { EnqueueOptions, JobRegistry, JobRunner } from './job.registry.ts';
import { inRootSpan } from '../telemetry/tracing.ts';

interface QueuedJob {
  id: string;
  name: JobName;
  payload: unknown;
  attempt: number;
  runAt: number;
}

/**
 * Runs the registry's jobs inside the server process, for the embedded default (no Redis).
 * Same semantics as the BullMQ runner where it matters to handlers: payload validation,
 * attempts with exponential backoff, idempotent job ids, schedules, bounded concurrency,
 * and a stop that lets running jobs finish. Jobs live in memory: scheduled jobs run again
 * after a restart; a one-off job enqueued right before a crash is lost, which is why
 * deployments that cannot afford that use Redis.
 */
export class InProcessJobRunner implements JobRunner {
  readonly kind = 'in-process' as const;
  readonly #registry: JobRegistry;
  readonly #logger: Logger;
  readonly #concurrency: number;
  readonly #queue: QueuedJob[] = [];
  readonly #active = new Map<string, Promise<void>>();
  readonly #timers: NodeJS.Timeout[] = [];
  #wake: NodeJS.Timeout | undefined;
  #failed = 0;
  #state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';

  constructor(registry: JobRegistry, options: { logger: Logger; concurrency: number }) {
    this.#registry = registry;
    this.#logger = options.logger.child({ runner: this.kind });
    this.#concurrency = options.concurrency;
  }

  async start(): Promise<void> {
    this.#registry.assertComplete();
    this.#state = 'running';
    for (const def of this.#registry.all()) {
      if (!def.schedule) continue;
      const { everyMs, payload } = def.schedule;
      const fire = () => {
        this.enqueue(def.name, payload, { jobId: `schedule-${def.name}` }).catch((err: unknown) =>
          this.#logger.error({ err, job: def.name }, 'could not enqueue scheduled job'),
        );
      };
      fire();
      const timer = setInterval(fire, everyMs);
      timer.unref();
      this.#timers.push(timer);
    }
    this.#pump();
  }

  async enqueue<N extends JobName>(
    name: N,
    payload: JobPayload<N>,
    options: EnqueueOptions = {},
  ): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      throw new Error(`job runner is ${this.#state}; ${name} not accepted`);
    }
    if (!this.#registry.get(name)) throw new Error(`unknown job ${name}`);
    const parsed = this.#registry.parsePayload(name, payload);
    const id = options.jobId ?? randomUUID();
    if (options.jobId && (this.#active.has(id) || this.#queue.some((j) => j.id === id))) return;
    this.#queue.push({ id, name, payload: parsed, attempt: 1, runAt: Date.now() + (options.delayMs ?? 0) });
    this.#pump();
  }

  async depth() {
    return { waiting: this.#queue.length, active: this.#active.size, failed: this.#failed };
  }

  #pump(): void {
    if (this.#state === 'idle' || this.#state === 'stopped') return;
    clearTimeout(this.#wake);
    const now = Date.now();
    const draining = this.#state === 'stopping';
    while (this.#active.size < this.#concurrency) {
      const index = this.#queue.findIndex((j) => j.runAt <= now);
      if (index < 0) break;
      const [job] = this.#queue.splice(index, 1);
      this.#run(job!);
    }
    const next = Math.min(...this.#queue.map((j) => j.runAt));
    if (Number.isFinite(next) && !draining) {
      this.#wake = setTimeout(() => this.#pump(), Math.max(0, next - now));
      this.#wake.unref();
    }
  }

  #run(job: QueuedJob): void {
    const def = this.#registry.get(job.name)!;
    const logger = this.#logger.child({ job: job.name, jobId: job.id, attempt: job.attempt });
    const attempts = def.attempts ?? 3;
    const promise = (async () => {
      try {
        // A trace per job run (when tracing is on): its log lines and outbound calls belong to it.
        await inRootSpan(`job ${job.name}`, { 'mcp_gateway.job': job.name }, () =>
          def.handler(job.payload as never, {
            jobId: job.id,
            attempt: job.attempt,
            runner: this.kind,
            logger,
          }),
        );
      } catch (err) {
        if (job.attempt < attempts && this.#state === 'running') {
          const delay = (def.backoffMs ?? 1_000) * 2 ** (job.attempt - 1);
          logger.warn({ err, retryInMs: delay }, 'job failed; will retry');
          this.#queue.push({ ...job, attempt: job.attempt + 1, runAt: Date.now() + delay });
        } else {
          this.#failed++;
          logger.error({ err }, 'job failed; giving up');
        }
      }
    })().finally(() => {
      this.#active.delete(job.id);
      this.#pump();
    });
    this.#active.set(job.id, promise);
  }

  async stop(timeoutMs: number): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopping';
    for (const t of this.#timers) clearInterval(t);
    clearTimeout(this.#wake);
    const deadline = Date.now() + timeoutMs;
    // Drain: run what is due now, wait for what is running.
    while (this.#active.size > 0 && Date.now() < deadline) {
      this.#pump();
      await Promise.race([
        Promise.allSettled([...this.#active.values()]),
        new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()))),
      ]);
    }
    const left = this.#queue.length + this.#active.size;
    if (left) this.#logger.warn({ left }, 'job runner stopped with unfinished jobs');
    this.#state = 'stopped';
  }
}
