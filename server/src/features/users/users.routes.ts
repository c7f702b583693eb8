import { Router } from 'express';
import { isAdmin, requireRole } from '../../core/principal.ts';
import type { UsersRepository } from './users.repository.ts';

/** `GET /api/users`: the user directory, for admins (access rules name users by id). */
export function usersRoutes(deps: { users: UsersRepository }): Router {
  const router = Router();
  router.get('/api/users', requireRole(isAdmin, 'admins'), async (_req, res) => {
    const rows = await deps.users.list();
    res.json({
      users: rows.map((u) => ({
        id: u.id,
        displayName: u.displayName,
        email: u.email,
        role: u.role,
        groups: u.groups,
        createdAt: u.createdAt.toISOString(),
        lastSeenAt: u.lastSeenAt?.toISOString() ?? null,
        disabled: Boolean(u.disabledAt),
      })),
    });
  });
  return router;
}
