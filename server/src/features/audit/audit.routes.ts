import { Router } from 'express';
import { auditQuerySchema } from '@gateway/shared';
import { parseOr400 } from '../../platform/http/validate.ts';
import { canReadAudit, requireRole } from '../auth/index.ts';
import type { AuditService } from './audit.service.ts';

/** `GET /api/audit`: filtered, newest first, cursor-paginated; admins and auditors. */
export function auditRoutes(audit: AuditService): Router {
  const router = Router();
  router.get('/api/audit', requireRole(canReadAudit, 'admins and auditors'), async (req, res) => {
    const query = parseOr400(auditQuerySchema, req.query, 'query');
    res.json(await audit.query(query));
  });
  return router;
}
