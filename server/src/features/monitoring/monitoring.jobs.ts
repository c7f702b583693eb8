import type { JobRegistry } from '../../platform/jobs/job.registry.ts';
import type { HealthProber, UpstreamHealthService } from './monitoring.service.ts';

/** Registers `health.check`: every `intervalMs`, probe every enabled upstream and record the results. */
export function defineMonitoringJobs(
  registry: JobRegistry,
  deps: { upstreamHealth: UpstreamHealthService; probe: HealthProber; intervalMs: number },
): void {
  registry.define({
    name: 'health.check',
    schedule: { everyMs: deps.intervalMs, payload: { source: 'schedule' } },
    // A failed run (database unreachable) is not retried: the next interval's run replaces it.
    attempts: 1,
    async handler(payload, ctx) {
      const summary = await deps.upstreamHealth.runChecks(deps.probe, { slug: payload.server });
      ctx.logger.debug({ ...summary, source: payload.source }, 'health checks done');
    },
  });
}
