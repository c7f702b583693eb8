export { AuditRepository } from './audit.repository.ts';
export type { AuditEventInput, AuditSink } from '../../core/audit.ts';
export { AuditService, type AuditPending, type AuditWriterOptions } from './audit.service.ts';
export { AuditTrail, AuditChainBrokenError } from './audit.trail.ts';
export { buildAuditRecord, type AuditRecord } from './audit.record.ts';
export { canonicalEvent, chainHash, GENESIS_HASH } from './audit.chain.ts';
export { defineAuditJobs } from './audit.jobs.ts';
export { redactForAudit } from './audit.redact.ts';
