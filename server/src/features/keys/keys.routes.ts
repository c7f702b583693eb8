import { Router } from 'express';
import { createApiKeySchema } from '@gateway/shared';
import { z } from 'zod';
import { AppError } from '../../platform/http/errors.ts';
import { parseOr400, validate } from '../../platform/http/validate.ts';
import type { AuditSink } from '../../core/audit.ts';
import { principalOf, type Principal } from '../../core/principal.ts';
import type { KeysService } from './keys.service.ts';

const idParams = z.object({ id: z.string().uuid('must be a key id') });
const listQuery = z.object({ all: z.enum(['true', 'false']).optional() }).strict();

/** `/api/keys`: create (shown once), list (own; admins may list all), revoke; an unrestricted credential only. */
export function keysRoutes(deps: {
  keys: KeysService;
  audit: AuditSink;
  /**
   * Whether the caller can see the server, so a key cannot be scoped to one that does not
   * exist (a typo); a server the caller may not use looks the same as one that does not.
   */
  serverVisible: (principal: Principal, slug: string) => Promise<boolean>;
}): Router {
  const router = Router();
  router.post('/api/keys', validate({ body: createApiKeySchema }), async (req, res) => {
    const p = principalOf(res);
    const created = await deps.keys.create(p, req.body, async (servers) => {
      for (const [index, slug] of servers.entries()) {
        if (await deps.serverVisible(p, slug)) continue;
        throw new AppError('validation_failed', `body.servers[${index}]: no server ${slug}`, {
          issues: [{ path: `body.servers[${index}]`, message: `no server ${slug}` }],
        });
      }
    });
    deps.audit.record({
      category: 'admin',
      action: 'api_key.create',
      status: 'ok',
      userId: p.userId,
      apiKeyId: p.apiKeyId ?? null,
      ip: req.ip ?? null,
      details: {
        keyId: created.id,
        name: created.name,
        servers: created.servers,
        expiresAt: created.expiresAt,
      },
    });
    res.status(201).set('Cache-Control', 'no-store').json(created);
  });
  router.get('/api/keys', async (req, res) => {
    const { all } = parseOr400(listQuery, req.query, 'query');
    res.json({ keys: await deps.keys.list(principalOf(res), { all: all === 'true' }) });
  });
  router.delete('/api/keys/:id', async (req, res) => {
    const { id } = parseOr400(idParams, req.params, 'params');
    const p = principalOf(res);
    const revoked = await deps.keys.revoke(p, id);
    deps.audit.record({
      category: 'admin',
      action: 'api_key.revoke',
      status: 'ok',
      userId: p.userId,
      apiKeyId: p.apiKeyId ?? null,
      ip: req.ip ?? null,
      details: { keyId: revoked.id, owner: revoked.userId },
    });
    res.json(revoked);
  });
  return router;
}
