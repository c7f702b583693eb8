import { sql } from 'drizzle-orm';
import { pgTable, text, timestamp, uuid, uniqueIndex } from 'drizzle-orm/pg-core';
import { users } from '../users/users.schema.ts';

/**
 * Sealed secrets. `scope` says what the secret belongs to: `user` (a user's values for a
 * server, optionally for one thread) or `server` (an admin's static values for a server).
 * `ciphertext` is AES-256-GCM under a per-record data key, wrapped by the master key `keyId`.
 */
export const credentials = pgTable(
  'credentials',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    scope: text('scope', { enum: ['user', 'server'] }).notNull(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    serverId: uuid('server_id').notNull(),
    /** Empty string for the user-wide credential (so the unique index covers it). */
    threadId: text('thread_id').notNull().default(''),
    keyId: text('key_id').notNull(),
    wrappedKey: text('wrapped_key').notNull(),
    ciphertext: text('ciphertext').notNull(),
    /** Names of the fields present (not their values), for list views. */
    fieldNames: text('field_names').notNull().default(''),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('credentials_owner_key').on(t.scope, t.serverId, t.userId, t.threadId)],
);
