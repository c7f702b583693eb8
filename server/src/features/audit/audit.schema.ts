import {
  bigint,
  bigserial,
  index,
  integer,
  jsonb,
  pgTable,
  smallint,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

/**
 * The audit trail. Append-only; never holds a secret (details are redacted and capped).
 * Every event is linked into a hash chain in `seq` order: `hash` = SHA-256 over `prev_hash`
 * and the event's canonical form (audit.chain.ts). Rows written before the chain existed
 * carry '' in both columns and lie below the `legacy` checkpoint.
 */
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
    // OpenTelemetry trace id; null for events recorded with tracing off (and every older row).
    traceId: text('trace_id'),
    details: jsonb('details'),
    // The default only lets the migration add the columns to a table that already has rows;
    // the writer always sets both, and verification flags any row that kept the default.
    prevHash: text('prev_hash').notNull().default(''),
    hash: text('hash').notNull().default(''),
  },
  (t) => [
    index('audit_events_at_idx').on(t.at),
    index('audit_events_user_idx').on(t.userId, t.seq),
    index('audit_events_server_idx').on(t.serverSlug, t.seq),
    // Admins review a chat thread's tool calls.
    index('audit_events_thread_idx').on(t.threadId, t.seq),
    // Replaying a spool file or retrying an ambiguous commit skips events already written.
    uniqueIndex('audit_events_id_key').on(t.id),
  ],
);

/**
 * The single row (id = 1) holding the end of the chain. Writers lock it (`select ... for
 * update`) for the length of one batch, which serialises chaining across every process
 * writing to the database.
 */
export const auditChainHead = pgTable('audit_chain_head', {
  id: smallint('id').primaryKey(),
  lastSeq: bigint('last_seq', { mode: 'number' }).notNull(),
  lastHash: text('last_hash').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Where verification may start: events up to `up_to_seq` are gone (retention) or predate
 * the chain (legacy); `last_hash` is the hash the next event names as its `prev_hash`.
 * One row per retention run (updated batch by batch, in the same transaction as the delete).
 */
export const auditCheckpoints = pgTable(
  'audit_checkpoints',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: text('kind', { enum: ['retention', 'legacy'] }).notNull(),
    upToSeq: bigint('up_to_seq', { mode: 'number' }).notNull(),
    lastHash: text('last_hash').notNull(),
    deletedCount: bigint('deleted_count', { mode: 'number' }).notNull().default(0),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('audit_checkpoints_up_to_seq_idx').on(t.upToSeq)],
);

/** One row per file the `audit.export` job wrote; the largest `to_seq` is where the next one starts. */
export const auditExports = pgTable('audit_exports', {
  id: uuid('id').primaryKey().defaultRandom(),
  fromSeq: bigint('from_seq', { mode: 'number' }).notNull(),
  toSeq: bigint('to_seq', { mode: 'number' }).notNull(),
  eventCount: integer('event_count').notNull(),
  file: text('file').notNull(),
  at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
});
