import { sql } from 'drizzle-orm';
import { index, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { servers } from '../registry/registry.schema.ts';

/**
 * Access rules: a subject (a user, a group, or everyone) may use a server, optionally only
 * the listed tools, prompts and resources. No rule, no access (admins excepted).
 */
export const accessRules = pgTable(
  'access_rules',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    subjectType: text('subject_type', { enum: ['user', 'group', 'everyone'] }).notNull(),
    /** User id, group name, or '' for everyone. */
    subject: text('subject').notNull().default(''),
    serverId: uuid('server_id')
      .notNull()
      .references(() => servers.id, { onDelete: 'cascade' }),
    /**
     * What the rule grants: all three null, the whole server; otherwise only the listed tool
     * names, prompt names and resource URIs (or `*`-ended prefixes), null meaning none of
     * that kind.
     */
    tools: jsonb('tools').$type<string[] | null>(),
    prompts: jsonb('prompts').$type<string[] | null>(),
    resources: jsonb('resources').$type<string[] | null>(),
    createdBy: uuid('created_by'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('access_rules_server_idx').on(t.serverId)],
);
