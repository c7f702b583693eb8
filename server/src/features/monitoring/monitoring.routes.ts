import { Router } from 'express';
import { slugSchema } from '@gateway/shared';
import { z } from 'zod';
import { notFound } from '../../platform/http/errors.ts';
import { parseOr400 } from '../../platform/http/validate.ts';
import type { AccessService } from '../access/index.ts';
import { principalOf } from '../../core/principal.ts';
import type { RegistryService } from '../registry/index.ts';
import type { UpstreamHealthService } from './monitoring.service.ts';

const slugParams = z.object({ slug: slugSchema });

/** `GET /api/servers/{slug}/health`: for everyone who may see the server (404 otherwise). */
export function monitoringRoutes(deps: {
  upstreamHealth: UpstreamHealthService;
  registry: RegistryService;
  access: AccessService;
}): Router {
  const router = Router();
  router.get('/api/servers/:slug/health', async (req, res) => {
    const { slug } = parseOr400(slugParams, req.params, 'params');
    const server = await deps.registry.get(slug);
    if (!server || !deps.access.canViewServer(principalOf(res), server)) throw notFound(`server ${slug}`);
    res.set('Cache-Control', 'no-store').json(await deps.upstreamHealth.view(server));
  });
  return router;
}
