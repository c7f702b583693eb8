export { AuditRepository } from './audit.repository.ts';
export { AuditService, type AuditEventInput, type AuditSink } from './audit.service.ts';
export { redactForAudit } from './audit.redact.ts';
export { auditRoutes } from './audit.routes.ts';
