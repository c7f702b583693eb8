import { JOB_NAMES, jobPayloadSchemas, type JobName, type JobPayload } from '@gateway/shared';
import type { Logger } from '../logging/logger.ts';

/** What a handler gets besides its payload. */
export interface JobContext {
  /** Unique id of this run (BullMQ job id, or the in-process runner's). */
  readonly jobId: string;
  /** Which attempt this is, from 1. */
  readonly attempt: number;
  /** `bullmq` or `in-process`. */
  readonly runner: RunnerKind;
  readonly logger: Logger;
}

export type RunnerKind = 'bullmq' | 'in-process';

export interface JobDefinition<N extends JobName = JobName> {
  readonly name: N;
  readonly handler: (payload: JobPayload<N>, ctx: JobContext) => Promise<void>;
  /** Runs by itself every `everyMs` (the runner schedules it; at most one per interval). */
  readonly schedule?: { readonly everyMs: number; readonly payload: JobPayload<N> };
  /** Tries before giving up (default 3), with exponential backoff from `backoffMs` (default 1 s). */
  readonly attempts?: number;
  readonly backoffMs?: number;
}

/** Options for one enqueue. */
export interface EnqueueOptions {
  /** Idempotency key: a second enqueue with the same id while the first exists is a no-op. */
  readonly jobId?: string;
  readonly delayMs?: number;
}

/**
 * Every job the system runs, declared once and used by both runners. `assertComplete`
 * makes start-up fail when a job named in `shared/jobs.ts` has no handler.
 */
export class JobRegistry {
  readonly #jobs = new Map<JobName, JobDefinition>();
  readonly #expected: readonly JobName[];

  /** @param expected the jobs that must have a handler before a runner starts (default: all declared in shared). */
  constructor(expected: readonly JobName[] = JOB_NAMES) {
    this.#expected = expected;
  }

  define<N extends JobName>(definition: JobDefinition<N>): this {
    if (this.#jobs.has(definition.name)) {
      throw new Error(`job ${definition.name} is defined twice`);
    }
    this.#jobs.set(definition.name, definition as unknown as JobDefinition);
    return this;
  }

  get(name: string): JobDefinition | undefined {
    return this.#jobs.get(name as JobName);
  }

  all(): JobDefinition[] {
    return [...this.#jobs.values()];
  }

  /** Validates a payload against the job's schema; throws a ZodError naming the field. */
  parsePayload<N extends JobName>(name: N, payload: unknown): JobPayload<N> {
    return jobPayloadSchemas[name].parse(payload) as JobPayload<N>;
  }

  /** @throws when a declared job has no handler. */
  assertComplete(names: readonly JobName[] = this.#expected): void {
    const missing = names.filter((n) => !this.#jobs.has(n));
    if (missing.length) throw new Error(`jobs without a handler: ${missing.join(', ')}`);
  }
}

/** Runs jobs from the registry: BullMQ with Redis, in-process without. */
export interface JobRunner {
  readonly kind: RunnerKind;
  /** Starts consuming (if this process consumes) and installs the schedules. */
  start(): Promise<void>;
  enqueue<N extends JobName>(name: N, payload: JobPayload<N>, options?: EnqueueOptions): Promise<void>;
  /** Jobs waiting or running, for readiness and metrics. */
  depth(): Promise<{ waiting: number; active: number; failed: number }>;
  /** Stops taking new jobs and waits for the running ones (up to `timeoutMs`). */
  stop(timeoutMs: number): Promise<void>;
}
