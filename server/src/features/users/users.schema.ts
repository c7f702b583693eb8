import { sql } from 'drizzle-orm';
import { jsonb, pgTable, text, timestamp, uuid, uniqueIndex } from 'drizzle-orm/pg-core';

/** People (and the bootstrap admin) known to the gateway. Created on first login. */
export const users = pgTable(
  'users',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    /** Identity-provider subject (`iss|sub`), or `local|<name>` for local accounts. */
    subject: text('subject').notNull(),
    email: text('email'),
    displayName: text('display_name').notNull(),
    /** Built-in role: admin, auditor or user. */
    role: text('role', { enum: ['admin', 'auditor', 'user'] })
      .notNull()
      .default('user'),
    /** Groups from the identity provider's groups claim at the last login. */
    groups: jsonb('groups').$type<string[]>().notNull().default([]),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }),
    disabledAt: timestamp('disabled_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('users_subject_key').on(t.subject)],
);
