import { sql } from 'drizzle-orm';
import { bigserial, index, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { ToolCallView } from '@gateway/shared';
import { users } from '../users/users.schema.ts';

/** Chat threads: a user's conversations with the agent. */
export const chatThreads = pgTable(
  'chat_threads',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    title: text('title').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('chat_threads_user_idx').on(t.userId, t.updatedAt),
    index('chat_threads_updated_idx').on(t.updatedAt),
  ],
);

/**
 * Messages in order (`seq`). A user message holds the text typed; an assistant message is one
 * step of the agent: its text and the tool calls it made in that step, with their results.
 * The model's history is rebuilt from these rows on every turn.
 */
export const chatMessages = pgTable(
  'chat_messages',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    threadId: uuid('thread_id')
      .notNull()
      .references(() => chatThreads.id, { onDelete: 'cascade' }),
    role: text('role').$type<'user' | 'assistant'>().notNull(),
    text: text('text').notNull().default(''),
    toolCalls: jsonb('tool_calls').$type<ToolCallView[]>().notNull().default([]),
    error: text('error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('chat_messages_thread_idx').on(t.threadId, t.seq)],
);
