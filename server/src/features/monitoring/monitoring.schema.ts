import { bigserial, index, integer, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { UPSTREAM_STATUSES } from '@gateway/shared';
import { servers } from '../registry/registry.schema.ts';

/**
 * Upstream health-check results, newest last. The health-check job keeps the last
 * HEALTH_HISTORY_SIZE rows per server and deletes older ones; rows go with their server.
 */
export const serverHealthChecks = pgTable(
  'server_health_checks',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    serverId: uuid('server_id')
      .notNull()
      .references(() => servers.id, { onDelete: 'cascade' }),
    status: text('status', { enum: UPSTREAM_STATUSES }).notNull(),
    /** Round trip of the MCP `ping`; null when the server was not reached. */
    latencyMs: integer('latency_ms'),
    /** Why the server is not `up`; never holds a secret (URL queries are cut off). */
    error: text('error'),
    checkedAt: timestamp('checked_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [index('server_health_checks_server_idx').on(t.serverId, t.seq)],
);
