import { and, desc, eq, isNull } from 'drizzle-orm';
import type { Database } from '../../platform/db/database.ts';
import { users } from '../users/users.schema.ts';
import { apiKeys } from './keys.schema.ts';

export type ApiKeyRow = typeof apiKeys.$inferSelect;

export class KeysRepository {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  async insert(values: typeof apiKeys.$inferInsert): Promise<ApiKeyRow> {
    const [row] = await this.#db.insert(apiKeys).values(values).returning();
    return row!;
  }

  /** The key with this hash and its owner, if the owner is not disabled. */
  async findByHash(hash: string) {
    const [row] = await this.#db
      .select({ key: apiKeys, user: users })
      .from(apiKeys)
      .innerJoin(users, eq(users.id, apiKeys.userId))
      .where(and(eq(apiKeys.hash, hash), isNull(users.disabledAt)));
    return row;
  }

  async findById(id: string): Promise<ApiKeyRow | undefined> {
    const [row] = await this.#db.select().from(apiKeys).where(eq(apiKeys.id, id));
    return row;
  }

  async list(userId?: string): Promise<ApiKeyRow[]> {
    const q = this.#db.select().from(apiKeys);
    return (userId ? q.where(eq(apiKeys.userId, userId)) : q).orderBy(desc(apiKeys.createdAt));
  }

  async revoke(id: string): Promise<ApiKeyRow | undefined> {
    const [row] = await this.#db
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
      .returning();
    return row;
  }

  async touch(id: string, at: Date): Promise<void> {
    await this.#db.update(apiKeys).set({ lastUsedAt: at }).where(eq(apiKeys.id, id));
  }

  /** Replaces the named key of a user (bootstrap): deletes keys of that name, inserts the new one. */
  async replaceNamed(values: typeof apiKeys.$inferInsert): Promise<ApiKeyRow> {
    return this.#db.transaction(async (tx) => {
      await tx.delete(apiKeys).where(and(eq(apiKeys.userId, values.userId), eq(apiKeys.name, values.name)));
      const [row] = await tx.insert(apiKeys).values(values).returning();
      return row!;
    });
  }
}
