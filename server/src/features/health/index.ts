export { HealthService, type ReadinessProbe } from './health.service.ts';
