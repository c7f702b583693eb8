import { sql } from 'drizzle-orm';
import { index, pgTable, text, timestamp, unique, uuid } from 'drizzle-orm/pg-core';
import { users } from '../users/users.schema.ts';

/**
 * Sealed secrets. `scope` says what the secret belongs to: `user` (a user's values for a
 * server, optionally for one thread) or `server` (an admin's static values for a server).
 * `kind` says what is sealed: `values` (field values: env or headers) or `oauth` (for a
 * user: OAuth tokens of their upstream account; for a server: the gateway's OAuth client
 * there, registered dynamically or configured by an admin).
 * `ciphertext` is AES-256-GCM under a per-record data key, wrapped by the master key `keyId`.
 */
export const credentials = pgTable(
  'credentials',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    scope: text('scope', { enum: ['user', 'server'] }).notNull(),
    kind: text('kind', { enum: ['values', 'oauth'] })
      .notNull()
      .default('values'),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    serverId: uuid('server_id').notNull(),
    /** Empty string for the user-wide credential (so the unique index covers it). */
    threadId: text('thread_id').notNull().default(''),
    keyId: text('key_id').notNull(),
    wrappedKey: text('wrapped_key').notNull(),
    ciphertext: text('ciphertext').notNull(),
    /** Names of the fields present (not their values), for list views. */
    fieldNames: text('field_names').notNull().default(''),
    /** OAuth tokens: when the access token expires (plain, so the refresh job finds them without decrypting). */
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    /** OAuth tokens: `needs_consent` once the upstream refused the grant (the user must connect again). */
    status: text('status', { enum: ['ok', 'needs_consent'] })
      .notNull()
      .default('ok'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // NULLS NOT DISTINCT: server-scope records have no user, and must still be one per server.
    unique('credentials_owner_unique')
      .on(t.scope, t.kind, t.serverId, t.userId, t.threadId)
      .nullsNotDistinct(),
    index('credentials_refresh_due').on(t.kind, t.status, t.expiresAt),
  ],
);

/**
 * Upstream OAuth authorizations in flight: the `state` sent to the authorization server,
 * who started it (user, server, thread), the sealed PKCE verifier and the authorization
 * URL to send the user's browser to. Single use (`usedAt`), short-lived (`expiresAt`).
 */
export const oauthPendingAuthorizations = pgTable(
  'oauth_pending_authorizations',
  {
    state: text('state').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    serverId: uuid('server_id').notNull(),
    threadId: text('thread_id').notNull().default(''),
    keyId: text('key_id').notNull(),
    wrappedKey: text('wrapped_key').notNull(),
    /** The sealed PKCE code verifier. */
    ciphertext: text('ciphertext').notNull(),
    authorizationUrl: text('authorization_url').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
  },
  (t) => [index('oauth_pending_authorizations_expires').on(t.expiresAt)],
);
