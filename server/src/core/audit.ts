import type { AuditStatus } from '@gateway/shared';

/** What a feature reports; the audit service stamps id and time, redacts and caps `details`. */
export interface AuditEventInput {
  category: 'mcp' | 'auth' | 'admin' | 'credential' | 'chat';
  action: string;
  status: AuditStatus;
  userId?: string | null | undefined;
  serverSlug?: string | null | undefined;
  toolName?: string | null | undefined;
  resourceUri?: string | null | undefined;
  threadId?: string | null | undefined;
  sessionId?: string | null | undefined;
  apiKeyId?: string | null | undefined;
  oauthClientId?: string | null | undefined;
  clientName?: string | null | undefined;
  clientVersion?: string | null | undefined;
  ip?: string | null | undefined;
  /** `client->upstream`, `upstream->client`, or undefined for non-MCP events. */
  direction?: string | null | undefined;
  error?: string | null | undefined;
  latencyMs?: number | null | undefined;
  requestBytes?: number | null | undefined;
  responseBytes?: number | null | undefined;
  /** Which credential was used: `user`, `thread`, `server`, `none`. */
  credentialScope?: string | null | undefined;
  /** The trace the event belongs to; unset: the active span's, if tracing is on. */
  traceId?: string | null | undefined;
  details?: unknown;
}

/** Anything that accepts audit events; features depend on this, not on the audit service. */
export interface AuditSink {
  record(event: AuditEventInput): void;
}
