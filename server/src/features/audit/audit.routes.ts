import { Router } from 'express';
import { auditExportQuerySchema, auditQuerySchema, usageQuerySchema } from '@gateway/shared';
import { forbidden } from '../../platform/http/errors.ts';
import { requestLogger } from '../../platform/http/request-log.ts';
import { parseOr400 } from '../../platform/http/validate.ts';
import { canReadAudit, isAdmin, principalOf, requireRole } from '../../core/principal.ts';
import type { AuditService } from './audit.service.ts';

/**
 * `GET /api/audit`: filtered, newest first, cursor-paginated; admins and auditors.
 * `GET /api/audit/export`: the same filters, oldest first, streamed as JSONL or CSV; admins and auditors.
 * `POST /api/audit/verify`: checks the hash chain and returns the report; admins.
 * `GET /api/stats/usage`: tools/call statistics; everyone sees their own, admins and auditors anyone's.
 */
export function auditRoutes(audit: AuditService): Router {
  const router = Router();
  router.get('/api/audit', requireRole(canReadAudit, 'admins and auditors'), async (req, res) => {
    const query = parseOr400(auditQuerySchema, req.query, 'query');
    res.json(await audit.query(query));
  });

  router.get('/api/audit/export', requireRole(canReadAudit, 'admins and auditors'), async (req, res) => {
    const query = parseOr400(auditExportQuerySchema, req.query, 'query');
    const principal = principalOf(res);
    // Who took a copy of the audit trail, and of which part, is itself worth recording.
    audit.record({
      category: 'admin',
      action: 'audit.export',
      status: 'ok',
      userId: principal.userId,
      apiKeyId: principal.apiKeyId,
      oauthClientId: principal.oauthClientId,
      ip: req.ip ?? null,
      details: query,
    });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    res.status(200);
    res.setHeader(
      'Content-Type',
      query.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
    );
    res.setHeader('Content-Disposition', `attachment; filename="audit-${stamp}.${query.format}"`);
    res.setHeader('Cache-Control', 'no-store');
    try {
      await audit.trail.exportTo(res, query);
      res.end();
    } catch (err) {
      if (!res.headersSent) throw err;
      // The 200 is already on the wire: cut the connection so the client sees a failed
      // download rather than a short file that looks complete.
      if (!res.destroyed) requestLogger(req).error({ err }, 'audit export failed mid-stream');
      res.destroy();
    }
  });

  router.post('/api/audit/verify', requireRole(isAdmin, 'admins'), async (req, res) => {
    const principal = principalOf(res);
    const report = await audit.trail.verify();
    audit.record({
      category: 'admin',
      action: 'audit.verify',
      status: report.ok ? 'ok' : 'error',
      userId: principal.userId,
      apiKeyId: principal.apiKeyId,
      oauthClientId: principal.oauthClientId,
      ip: req.ip ?? null,
      error: report.broken ? `chain broken at seq ${report.broken.seq} (${report.broken.reason})` : null,
      details: { checked: report.checked, lastSeq: report.lastSeq },
    });
    res.json(report);
  });

  router.get('/api/stats/usage', async (req, res) => {
    const query = parseOr400(usageQuerySchema, req.query, 'query');
    const principal = principalOf(res);
    let userId: string | undefined = principal.userId;
    if (canReadAudit(principal)) userId = query.userId;
    else if (query.userId && query.userId !== principal.userId) {
      throw forbidden("query.userId: only admins and auditors may see other users' usage");
    }
    res.json(await audit.trail.usage(query, userId));
  });
  return router;
}
