import type { AuditEventView } from '@gateway/shared';
import type { AuditRow } from './audit.repository.ts';

/** The API form of a stored event. */
export function toAuditView(r: AuditRow): AuditEventView {
  return {
    seq: r.seq,
    id: r.id,
    at: r.at.toISOString(),
    category: r.category,
    action: r.action,
    status: r.status,
    userId: r.userId,
    serverSlug: r.serverSlug,
    toolName: r.toolName,
    resourceUri: r.resourceUri,
    threadId: r.threadId,
    sessionId: r.sessionId,
    apiKeyId: r.apiKeyId,
    oauthClientId: r.oauthClientId,
    clientName: r.clientName,
    clientVersion: r.clientVersion,
    ip: r.ip,
    direction: r.direction,
    error: r.error,
    latencyMs: r.latencyMs,
    requestBytes: r.requestBytes,
    responseBytes: r.responseBytes,
    credentialScope: r.credentialScope,
    traceId: r.traceId,
    details: r.details,
    prevHash: r.prevHash,
    hash: r.hash,
  };
}
