import { Router } from 'express';
import { rotateKeysSchema } from '@gateway/shared';
import { validate } from '../../platform/http/validate.ts';
import { isAdmin, principalOf, requireRole } from '../auth/index.ts';
import type { CredentialsRotation } from './credentials.rotation.ts';

/**
 * `POST /api/admin/keys/rotate` (admins): re-wraps every sealed record under the current
 * master key and answers with the counts. This is how to rotate on the embedded database,
 * which only the running server may open; on PostgreSQL `npm run keys:rotate` does the same.
 */
export function keyRotationRoutes(deps: { rotation: CredentialsRotation }): Router {
  const router = Router();
  router.post(
    '/api/admin/keys/rotate',
    requireRole(isAdmin, 'admins'),
    validate({ body: rotateKeysSchema }),
    async (req, res) => {
      const body = req.body as { batchSize: number };
      const report = await deps.rotation.rewrapAll({
        trigger: 'api',
        batchSize: body.batchSize,
        principal: principalOf(res),
      });
      res.set('Cache-Control', 'no-store').json(report);
    },
  );
  return router;
}
