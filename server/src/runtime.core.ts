import type { Redis } from 'ioredis';
import { AuditRepository, AuditTrail, defineAuditJobs } from './features/audit/index.ts';
import { defineMaintenanceJobs, MaintenanceRepository } from './features/maintenance/index.ts';
import type { Config } from './platform/config/config.ts';
import { openDatabase, type DatabaseHandle } from './platform/db/database.ts';
import { BullMqJobRunner } from './platform/jobs/bullmq.runner.ts';
import { InProcessJobRunner } from './platform/jobs/inprocess.runner.ts';
import { JobRegistry, type JobRunner } from './platform/jobs/job.registry.ts';
import type { Logger } from './platform/logging/logger.ts';
import { LocalChangeFeed, RedisChangeFeed, type ChangeFeed } from './platform/redis/changes.ts';
import { connectRedis } from './platform/redis/redis.ts';

/** Everything the processes share: database, Redis, the job registry and its runner. */
export interface Core {
  readonly config: Config;
  readonly logger: Logger;
  readonly database: DatabaseHandle;
  readonly redis: Redis | undefined;
  readonly jobs: JobRegistry;
  readonly runner: JobRunner;
  /** Tells the deployment's other processes what to reload (Redis pub/sub; nothing without Redis). */
  readonly changes: ChangeFeed;
  close(): Promise<void>;
}

/**
 * Opens the database (migrating it), Redis when configured, and builds the job registry
 * with the runner this process uses. `consumeJobs` is true in the workers process and, on
 * the embedded default, in the server (its in-process runner).
 */
export async function openCore(
  config: Config,
  logger: Logger,
  options: { role: 'server' | 'workers' },
): Promise<Core> {
  const database = await openDatabase(config.database, logger);
  let redis: Redis | undefined;
  try {
    redis = config.redis
      ? await connectRedis(config.redis.url, logger, { name: `mcp-gateway-${options.role}` })
      : undefined;
  } catch (err) {
    await database.close();
    throw err;
  }
  const jobs = new JobRegistry();
  defineMaintenanceJobs(jobs, {
    repository: new MaintenanceRepository(database.db),
    heartbeatIntervalMs: config.jobs.heartbeatIntervalMs,
  });
  defineAuditJobs(jobs, {
    trail: new AuditTrail(new AuditRepository(database.db), {
      logger,
      retentionDays: config.audit.retentionDays,
      exportDir: config.audit.exportDir,
    }),
    exportEnabled: config.audit.exportDir !== undefined,
    exportEveryMs: config.audit.exportIntervalMs,
  });
  // Jobs that need feature services (health checks, re-wrap) are defined by buildServices,
  // which both processes call; runner.start() fails when a declared job has no handler.
  const runner: JobRunner =
    redis && config.redis
      ? new BullMqJobRunner(jobs, {
          redis,
          prefix: config.redis.prefix,
          consume: options.role === 'workers',
          concurrency: config.jobs.concurrency,
          logger,
        })
      : new InProcessJobRunner(jobs, { logger, concurrency: config.jobs.concurrency });
  const changes: ChangeFeed =
    redis && config.redis ? new RedisChangeFeed(redis, config.redis.prefix, logger) : new LocalChangeFeed();
  return {
    config,
    logger,
    database,
    redis,
    jobs,
    runner,
    changes,
    async close() {
      await changes.close();
      redis?.disconnect();
      await database.close();
    },
  };
}
