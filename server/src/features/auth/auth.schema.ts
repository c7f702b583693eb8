import { index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/** Web sessions (express-session store). */
export const webSessions = pgTable(
  'web_sessions',
  {
    sid: text('sid').primaryKey(),
    sess: jsonb('sess').$type<Record<string, unknown>>().notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('web_sessions_expires_idx').on(t.expiresAt)],
);

/**
 * The OAuth authorization server's storage (oidc-provider adapter): grants, codes, refresh
 * tokens, registered clients, interactions, sessions. One row per (model, id).
 */
export const oauthStore = pgTable(
  'oauth_store',
  {
    key: text('key').primaryKey(),
    model: text('model').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    grantId: text('grant_id'),
    userCode: text('user_code'),
    uid: text('uid'),
    accountId: text('account_id'),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    consumedAt: timestamp('consumed_at', { withTimezone: true }),
  },
  (t) => [
    index('oauth_store_grant_idx').on(t.grantId),
    index('oauth_store_uid_idx').on(t.uid),
    index('oauth_store_account_idx').on(t.model, t.accountId),
  ],
);

/** Small sealed settings shared by every replica (signing keys, cookie secrets). */
export const sealedSettings = pgTable('sealed_settings', {
  name: text('name').primaryKey(),
  keyId: text('key_id').notNull(),
  wrappedKey: text('wrapped_key').notNull(),
  ciphertext: text('ciphertext').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});
