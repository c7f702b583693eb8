import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type RequestHandler } from 'express';
import { AppError } from '../http/errors.ts';
import type { Metrics } from './metrics.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * `GET /metrics` in the Prometheus text format. With `token` set the scraper must send
 * `Authorization: Bearer <token>` (401 otherwise); the comparison is constant-time.
 */
export function metricsRoutes(metrics: Metrics, options: { token?: string | undefined }): Router {
  const router = Router();
  const expected = options.token ? digest(options.token) : undefined;
  const authorize: RequestHandler = (req, _res, next) => {
    if (!expected) return next();
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    // Hashing first makes the comparison constant-time whatever the presented length.
    if (m && timingSafeEqual(digest(m[1]!), expected)) return next();
    next(
      new AppError(
        'unauthenticated',
        m ? 'invalid metrics token' : 'authentication required: send Authorization: Bearer <METRICS_TOKEN>',
        { headers: { 'WWW-Authenticate': 'Bearer realm="metrics"' } },
      ),
    );
  };
  router.get('/metrics', authorize, async (_req, res, next) => {
    try {
      const { contentType, body } = await metrics.render();
      res.set('Content-Type', contentType).set('Cache-Control', 'no-store').send(body);
    } catch (err) {
      next(err);
    }
  });
  return router;
}
