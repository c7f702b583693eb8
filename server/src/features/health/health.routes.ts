import { Router } from 'express';
import type { HealthService } from './health.service.ts';

/** `GET /healthz` (alive) and `GET /readyz` (dependencies reachable; 503 when not). */
export function healthRoutes(health: HealthService): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json(health.liveness());
  });
  router.get('/readyz', async (_req, res) => {
    const readiness = await health.readiness();
    res
      .status(readiness.status === 'ready' ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json(readiness);
  });
  return router;
}
