import type { ToolCallView } from '@gateway/shared';
import { asc, desc, eq, sql } from 'drizzle-orm';
import type { Database } from '../../platform/db/database.ts';
import { users } from '../users/users.schema.ts';
import { chatMessages, chatThreads } from './chat.schema.ts';

export type ThreadRow = typeof chatThreads.$inferSelect & { userName: string; messageCount: number };
export type MessageRow = typeof chatMessages.$inferSelect;

const threadColumns = {
  id: chatThreads.id,
  userId: chatThreads.userId,
  title: chatThreads.title,
  createdAt: chatThreads.createdAt,
  updatedAt: chatThreads.updatedAt,
  userName: users.displayName,
  messageCount: sql<number>`(select count(*)::int from ${chatMessages} where ${chatMessages.threadId} = ${chatThreads.id})`,
};

export class ChatRepository {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  async insertThread(userId: string, title: string): Promise<string> {
    const [row] = await this.#db
      .insert(chatThreads)
      .values({ userId, title })
      .returning({ id: chatThreads.id });
    return row!.id;
  }

  async findThread(id: string): Promise<ThreadRow | undefined> {
    const [row] = await this.#db
      .select(threadColumns)
      .from(chatThreads)
      .innerJoin(users, eq(users.id, chatThreads.userId))
      .where(eq(chatThreads.id, id));
    return row;
  }

  /** Threads, newest activity first: one user's, or everyone's (`userId` undefined). */
  async listThreads(filter: { userId?: string | undefined; limit: number }): Promise<ThreadRow[]> {
    const q = this.#db
      .select(threadColumns)
      .from(chatThreads)
      .innerJoin(users, eq(users.id, chatThreads.userId));
    return (filter.userId ? q.where(eq(chatThreads.userId, filter.userId)) : q)
      .orderBy(desc(chatThreads.updatedAt), desc(chatThreads.id))
      .limit(filter.limit);
  }

  async renameThread(id: string, title: string): Promise<boolean> {
    const rows = await this.#db
      .update(chatThreads)
      .set({ title, updatedAt: new Date() })
      .where(eq(chatThreads.id, id))
      .returning({ id: chatThreads.id });
    return rows.length > 0;
  }

  async deleteThread(id: string): Promise<boolean> {
    const rows = await this.#db
      .delete(chatThreads)
      .where(eq(chatThreads.id, id))
      .returning({ id: chatThreads.id });
    return rows.length > 0;
  }

  /** Appends a message and marks the thread as active now. */
  async insertMessage(values: {
    threadId: string;
    role: 'user' | 'assistant';
    text: string;
    toolCalls?: ToolCallView[];
    error?: string | null;
  }): Promise<MessageRow> {
    const [row] = await this.#db
      .insert(chatMessages)
      .values({
        threadId: values.threadId,
        role: values.role,
        text: values.text,
        toolCalls: values.toolCalls ?? [],
        error: values.error ?? null,
      })
      .returning();
    await this.#db
      .update(chatThreads)
      .set({ updatedAt: new Date() })
      .where(eq(chatThreads.id, values.threadId));
    return row!;
  }

  async listMessages(threadId: string): Promise<MessageRow[]> {
    return this.#db
      .select()
      .from(chatMessages)
      .where(eq(chatMessages.threadId, threadId))
      .orderBy(asc(chatMessages.seq));
  }
}
