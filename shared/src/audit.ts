import { z } from 'zod';

export const AUDIT_STATUSES = ['ok', 'error', 'denied'] as const;
export type AuditStatus = (typeof AUDIT_STATUSES)[number];

/** One audit record as the API returns it. Arguments and results are redacted and capped. */
export interface AuditEventView {
  id: string;
  at: string;
  /** `mcp` (a message through the gateway), `auth`, `admin`, `credential`. */
  category: string;
  /** MCP method (`tools/call`) or action (`server.create`, `api_key.revoke`, `auth.reject`). */
  action: string;
  status: AuditStatus;
  userId: string | null;
  serverSlug: string | null;
  toolName: string | null;
  resourceUri: string | null;
  threadId: string | null;
  sessionId: string | null;
  apiKeyId: string | null;
  oauthClientId: string | null;
  clientName: string | null;
  clientVersion: string | null;
  ip: string | null;
  direction: string | null;
  error: string | null;
  latencyMs: number | null;
  requestBytes: number | null;
  responseBytes: number | null;
  credentialScope: string | null;
  details: unknown;
}

/** `GET /api/audit` query. */
export const auditQuerySchema = z
  .object({
    userId: z.string().uuid().optional(),
    server: z.string().max(64).optional(),
    action: z.string().max(128).optional(),
    tool: z.string().max(256).optional(),
    status: z.enum(AUDIT_STATUSES).optional(),
    category: z.string().max(32).optional(),
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
    /** Opaque cursor from the previous page's `nextCursor`. */
    cursor: z.string().max(200).optional(),
  })
  .strict();
export type AuditQuery = z.infer<typeof auditQuerySchema>;

export interface AuditPage {
  events: AuditEventView[];
  nextCursor: string | null;
}
