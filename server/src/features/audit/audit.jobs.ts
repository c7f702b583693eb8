import type { JobRegistry } from '../../platform/jobs/job.registry.ts';
import type { AuditTrail } from './audit.trail.ts';

const DAY_MS = 86_400_000;

/**
 * Registers the audit jobs: `audit.retention` (daily) and `audit.export` (every
 * `exportEveryMs`, scheduled only when an export directory is configured; its handler
 * always exists because start-up requires a handler for every declared job).
 */
export function defineAuditJobs(
  registry: JobRegistry,
  deps: { trail: AuditTrail; exportEnabled: boolean; exportEveryMs: number },
): void {
  registry.define({
    name: 'audit.retention',
    schedule: { everyMs: DAY_MS, payload: {} },
    attempts: 3,
    backoffMs: 60_000,
    async handler(_payload, ctx) {
      const result = await deps.trail.applyRetention();
      if (result.deleted) ctx.logger.info(result, 'audit retention done');
    },
  });
  registry.define({
    name: 'audit.export',
    ...(deps.exportEnabled ? { schedule: { everyMs: deps.exportEveryMs, payload: {} } } : {}),
    attempts: 3,
    backoffMs: 60_000,
    async handler(_payload, ctx) {
      const written = await deps.trail.exportToDirectory();
      if (written) ctx.logger.info({ file: written.file, count: written.count }, 'audit export written');
    },
  });
}
