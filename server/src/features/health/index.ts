export { HealthService, type ReadinessProbe } from './health.service.ts';
export { healthRoutes } from './health.routes.ts';
