export { MonitoringRepository } from './monitoring.repository.ts';
export {
  UpstreamHealthService,
  type HealthCheckSettings,
  type HealthProber,
  type HealthProbeResult,
  type HealthRunSummary,
  type HealthStatusListener,
} from './monitoring.service.ts';
export { defineMonitoringJobs } from './monitoring.jobs.ts';
