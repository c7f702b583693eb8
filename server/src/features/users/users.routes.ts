import { Router } from 'express';
import { z } from 'zod';
import { updateUserSchema, type UpdateUser } from '@gateway/shared';
import type { AuditSink } from '../../core/audit.ts';
import { isAdmin, principalOf, requireRole } from '../../core/principal.ts';
import { notFound } from '../../platform/http/errors.ts';
import { parseOr400, validate } from '../../platform/http/validate.ts';
import type { UserRow, UsersRepository } from './users.repository.ts';

const idParams = z.object({ id: z.string().uuid('must be a user id') });

const view = (u: UserRow) => ({
  id: u.id,
  displayName: u.displayName,
  email: u.email,
  role: u.role,
  groups: u.groups,
  createdAt: u.createdAt.toISOString(),
  lastSeenAt: u.lastSeenAt?.toISOString() ?? null,
  disabled: Boolean(u.disabledAt),
});

/**
 * `GET /api/users`: the user directory, for admins (access rules name users by id).
 * `PATCH /api/users/{id}`: an admin changes a user's role or disables the account;
 * `onChange` makes it apply at once to the user's open MCP sessions and cached credentials.
 */
export function usersRoutes(deps: {
  users: UsersRepository;
  audit: AuditSink;
  onUserChange: () => void;
}): Router {
  const router = Router();
  const adminOnly = requireRole(isAdmin, 'admins');
  router.get('/api/users', adminOnly, async (_req, res) => {
    const rows = await deps.users.list();
    res.json({ users: rows.map(view) });
  });
  router.patch('/api/users/:id', adminOnly, validate({ body: updateUserSchema }), async (req, res) => {
    const { id } = parseOr400(idParams, req.params, 'params');
    const body = req.body as UpdateUser;
    const row = await deps.users.update(id, {
      ...(body.role ? { role: body.role } : {}),
      ...(body.disabled !== undefined ? { disabledAt: body.disabled ? new Date() : null } : {}),
    });
    if (!row) throw notFound('user');
    deps.onUserChange();
    const principal = principalOf(res);
    deps.audit.record({
      category: 'admin',
      action: 'user.update',
      status: 'ok',
      userId: principal.userId,
      apiKeyId: principal.apiKeyId ?? null,
      details: { user: id, ...body },
    });
    res.json(view(row));
  });
  return router;
}
