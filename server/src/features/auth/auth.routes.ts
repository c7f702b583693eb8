import { Router } from 'express';
import { z } from 'zod';
import { parseOr400 } from '../../platform/http/validate.ts';
import type { UsersRepository } from '../users/index.ts';
import { principalOf } from '../../core/principal.ts';
import type { WebAuth } from './auth.web.ts';
import type { OAuthServer } from './oauth.server.ts';

const listQuery = z.object({ all: z.enum(['true', 'false']).optional() }).strict();
const grantParams = z.object({ id: z.string().min(1).max(200) });

/** `/api/me` and the caller's connected OAuth clients (grants), with revoke. */
export function authApiRoutes(deps: { web: WebAuth; oauth: OAuthServer; users: UsersRepository }): Router {
  const router = Router();
  router.get('/api/me', async (req, res) => {
    const p = principalOf(res);
    const user = await deps.users.findById(p.userId);
    res.set('Cache-Control', 'no-store').json(deps.web.me(req, res, p, user?.email ?? null));
  });
  router.get('/api/oauth/grants', async (req, res) => {
    const { all } = parseOr400(listQuery, req.query, 'query');
    res.json({ grants: await deps.oauth.listGrants(principalOf(res), all === 'true') });
  });
  router.delete('/api/oauth/grants/:id', async (req, res) => {
    const { id } = parseOr400(grantParams, req.params, 'params');
    await deps.oauth.revokeGrant(principalOf(res), id);
    res.status(204).end();
  });
  return router;
}
