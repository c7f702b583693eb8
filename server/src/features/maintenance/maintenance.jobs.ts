import { hostname } from 'node:os';
import type { JobRegistry } from '../../platform/jobs/job.registry.ts';
import type { MaintenanceRepository } from './maintenance.repository.ts';

/** Registers the maintenance jobs (thin processors over the repository). */
export function defineMaintenanceJobs(
  registry: JobRegistry,
  deps: { repository: MaintenanceRepository; heartbeatIntervalMs: number },
): void {
  registry.define({
    name: 'maintenance.heartbeat',
    schedule: { everyMs: deps.heartbeatIntervalMs, payload: { source: 'schedule' } },
    attempts: 3,
    backoffMs: 500,
    async handler(payload, ctx) {
      await deps.repository.recordHeartbeat(
        `${ctx.runner}:${hostname()}:${process.pid}`,
        ctx.runner,
        payload.source,
      );
    },
  });
}
