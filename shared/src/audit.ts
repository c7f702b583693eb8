import { z } from 'zod';

export const AUDIT_STATUSES = ['ok', 'error', 'denied'] as const;
export type AuditStatus = (typeof AUDIT_STATUSES)[number];

/** One audit record as the API returns it. Arguments and results are redacted and capped. */
export interface AuditEventView {
  /** Position in the hash chain (ascending, may have gaps; never reused). */
  seq: number;
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
  /**
   * The OpenTelemetry trace the event happened in (32 hex digits), when tracing was on: the
   * way from an audit record to the request's spans and log lines.
   */
  traceId: string | null;
  details: unknown;
  /** Hash of the previous event in the chain (hex SHA-256). */
  prevHash: string;
  /** SHA-256 over `prevHash` and this event's canonical form (see the README's "Audit trail"). */
  hash: string;
}

/** Filters shared by `GET /api/audit` and `GET /api/audit/export`. */
const auditFilterShape = {
  userId: z.string().uuid().optional(),
  server: z.string().max(64).optional(),
  action: z.string().max(128).optional(),
  tool: z.string().max(256).optional(),
  /** Events of one chat thread (the agent's tool calls, the thread's credential use). */
  threadId: z.string().uuid().optional(),
  status: z.enum(AUDIT_STATUSES).optional(),
  category: z.string().max(32).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
};

/** `GET /api/audit` query. */
export const auditQuerySchema = z
  .object({
    ...auditFilterShape,
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

export const AUDIT_EXPORT_FORMATS = ['jsonl', 'csv'] as const;
export type AuditExportFormat = (typeof AUDIT_EXPORT_FORMATS)[number];

/** `GET /api/audit/export` query: the filters of `GET /api/audit` and a format; oldest first, no limit. */
export const auditExportQuerySchema = z
  .object({
    ...auditFilterShape,
    format: z.enum(AUDIT_EXPORT_FORMATS).default('jsonl'),
  })
  .strict();
export type AuditExportQuery = z.infer<typeof auditExportQuerySchema>;

/** Where a verification started: the genesis of the chain or the newest checkpoint. */
export interface AuditVerifyStart {
  /** Events with a sequence number up to this one are not checked (deleted by retention, or older than the chain). */
  afterSeq: number;
  /** The hash the first checked event must name as its `prevHash`. */
  prevHash: string;
  /** `genesis`, `retention` (events deleted by the retention job) or `legacy` (events recorded before hashing). */
  kind: 'genesis' | 'retention' | 'legacy';
  /** When the checkpoint was recorded; null for the genesis. */
  at: string | null;
}

/** The first place where the chain does not hold. */
export interface AuditChainBreak {
  seq: number;
  /** Event id; null when the break is at the chain head (no event to name). */
  id: string | null;
  /**
   * `hash_mismatch`: the event was changed after it was written.
   * `prev_hash_mismatch`: the event before it is missing or was replaced.
   * `head_mismatch`: the chain head names another last event: events at the end are missing, or the head was edited.
   * `head_missing`: the chain head row is gone.
   */
  reason: 'hash_mismatch' | 'prev_hash_mismatch' | 'head_mismatch' | 'head_missing';
  expectedHash: string;
  storedHash: string;
  expectedPrevHash: string;
  storedPrevHash: string;
}

/** `POST /api/audit/verify` and `npm run audit:verify`. */
export interface AuditVerifyReport {
  ok: boolean;
  /** Events whose links were checked. */
  checked: number;
  start: AuditVerifyStart;
  /** The last event checked (null when none). */
  lastSeq: number | null;
  /** The chain head as recorded in the database when the verification began. */
  head: { seq: number; hash: string } | null;
  broken: AuditChainBreak | null;
  startedAt: string;
  durationMs: number;
}

export const USAGE_WINDOWS = ['1h', '24h', '7d'] as const;
export type UsageWindow = (typeof USAGE_WINDOWS)[number];

/** `GET /api/stats/usage` query. `userId` is for admins and auditors; others always see their own. */
export const usageQuerySchema = z
  .object({
    window: z.enum(USAGE_WINDOWS).default('24h'),
    server: z.string().max(64).optional(),
    userId: z.string().uuid().optional(),
  })
  .strict();
export type UsageQuery = z.infer<typeof usageQuerySchema>;

/** `tools/call` usage of one tool of one server in the window. */
export interface UsageRow {
  server: string | null;
  tool: string | null;
  calls: number;
  /** Calls that failed (upstream error, JSON-RPC error, tool `isError`, timeout). */
  errors: number;
  /** Calls refused by access rules (not counted in the latency percentiles). */
  denied: number;
  /** Latency percentiles in milliseconds over calls that reached the upstream; null when none. */
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
}

export interface UsageStats {
  window: UsageWindow;
  from: string;
  to: string;
  /** The user the numbers are limited to; null: everyone (admins and auditors only). */
  userId: string | null;
  rows: UsageRow[];
}
