import { sql } from 'drizzle-orm';
import { boolean, jsonb, pgTable, text, timestamp, uuid, uniqueIndex } from 'drizzle-orm/pg-core';
import type { Capabilities, CredentialField, TransportConfig } from '@gateway/shared';

/** A server's OAuth settings as stored: whether a client secret is set, never the secret. */
export interface StoredOAuthSettings {
  scopes: string[];
  clientId?: string | undefined;
  clientSecretSet: boolean;
}

/** Registered MCP servers. Static secrets in `transport` are sealed by the credentials vault. */
export const servers = pgTable(
  'servers',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    slug: text('slug').notNull(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    /** Transport with static env/header values replaced by sealed references (see registry.service). */
    transport: jsonb('transport').$type<TransportConfig>().notNull(),
    credentialFields: jsonb('credential_fields').$type<CredentialField[]>().notNull().default([]),
    enabled: boolean('enabled').notNull().default(true),
    threadIsolated: boolean('thread_isolated').notNull().default(false),
    sensitiveTools: jsonb('sensitive_tools').$type<string[]>().notNull().default([]),
    /** OAuth settings without the client secret (sealed by the credentials vault); null: no OAuth. */
    oauth: jsonb('oauth').$type<StoredOAuthSettings>(),
    /** `api` (created over REST) or `file` (synced from MCP_SERVERS_FILE). */
    source: text('source', { enum: ['api', 'file'] })
      .notNull()
      .default('api'),
    capabilities: jsonb('capabilities').$type<Capabilities>(),
    capabilitiesAt: timestamp('capabilities_at', { withTimezone: true }),
    capabilitiesError: text('capabilities_error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('servers_slug_key').on(t.slug)],
);
