import { bigserial, index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/** The audit trail. Append-only; never holds a secret (details are redacted and capped). */
export const auditEvents = pgTable(
  'audit_events',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    id: uuid('id').notNull(),
    at: timestamp('at', { withTimezone: true, precision: 3 }).notNull(),
    category: text('category').notNull(),
    action: text('action').notNull(),
    status: text('status', { enum: ['ok', 'error', 'denied'] }).notNull(),
    userId: uuid('user_id'),
    serverSlug: text('server_slug'),
    toolName: text('tool_name'),
    resourceUri: text('resource_uri'),
    threadId: text('thread_id'),
    sessionId: text('session_id'),
    apiKeyId: uuid('api_key_id'),
    oauthClientId: text('oauth_client_id'),
    clientName: text('client_name'),
    clientVersion: text('client_version'),
    ip: text('ip'),
    direction: text('direction'),
    error: text('error'),
    latencyMs: integer('latency_ms'),
    requestBytes: integer('request_bytes'),
    responseBytes: integer('response_bytes'),
    credentialScope: text('credential_scope'),
    details: jsonb('details'),
  },
  (t) => [
    index('audit_events_at_idx').on(t.at),
    index('audit_events_user_idx').on(t.userId, t.seq),
    index('audit_events_server_idx').on(t.serverSlug, t.seq),
  ],
);
