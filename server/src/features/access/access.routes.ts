import { Router } from 'express';
import { z } from 'zod';
import { createAccessRuleSchema } from '@gateway/shared';
import { AppError } from '../../platform/http/errors.ts';
import { parseOr400, validate } from '../../platform/http/validate.ts';
import { isAdmin, principalOf, requireRole } from '../../core/principal.ts';
import type { RegistryService } from '../registry/index.ts';
import type { UsersRepository } from '../users/index.ts';
import type { AccessService } from './access.service.ts';

const idParams = z.object({ id: z.string().uuid('must be a rule id') });

/** `/api/access-rules`: admins list, create and delete access rules. */
export function accessRoutes(deps: {
  access: AccessService;
  registry: RegistryService;
  users: UsersRepository;
}): Router {
  const router = Router();
  const adminOnly = requireRole(isAdmin, 'admins');
  router.get('/api/access-rules', adminOnly, (_req, res) => {
    res.json({ rules: deps.access.list() });
  });
  router.post(
    '/api/access-rules',
    adminOnly,
    validate({ body: createAccessRuleSchema }),
    async (req, res) => {
      const body = req.body as z.infer<typeof createAccessRuleSchema>;
      const server = await deps.registry.get(body.server);
      if (!server) {
        throw new AppError('validation_failed', `body.server: no server ${body.server}`, {
          issues: [{ path: 'body.server', message: `no server ${body.server}` }],
        });
      }
      // Names the catalog does not know are a typo, not a grant: refused while the server's
      // lists are known (discovery ran). Resource URIs are not checked: resources are often
      // dynamic or paginated, and prefixes name what a listing does not show.
      const catalog = server.capabilities;
      if (catalog) {
        const known = { tools: catalog.tools, prompts: catalog.prompts };
        for (const field of ['tools', 'prompts'] as const) {
          const names = new Set(known[field].map((t) => t.name));
          const index = (body[field] ?? []).findIndex((n) => !names.has(n));
          if (index < 0) continue;
          const message = `server ${body.server} has no ${field === 'tools' ? 'tool' : 'prompt'} ${body[field]![index]}`;
          throw new AppError('validation_failed', `body.${field}[${index}]: ${message}`, {
            issues: [{ path: `body.${field}[${index}]`, message }],
          });
        }
      }
      if (body.subjectType === 'user' && !(await deps.users.findById(body.subject!))) {
        throw new AppError('validation_failed', `body.subject: no user ${body.subject}`, {
          issues: [{ path: 'body.subject', message: `no user ${body.subject}` }],
        });
      }
      res.status(201).json(await deps.access.create(principalOf(res), body, server.id));
    },
  );
  router.delete('/api/access-rules/:id', adminOnly, async (req, res) => {
    const { id } = parseOr400(idParams, req.params, 'params');
    await deps.access.delete(principalOf(res), id);
    res.status(204).end();
  });
  return router;
}
