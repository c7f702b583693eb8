import { and, asc, eq, gt, isNull, ne, sql, type SQL } from 'drizzle-orm';
import type { Database } from '../../platform/db/database.ts';
import { servers } from '../registry/registry.schema.ts';
import { credentials } from './credentials.schema.ts';

export type CredentialRow = typeof credentials.$inferSelect;
export interface CredentialOwner {
  scope: 'user' | 'server';
  serverId: string;
  userId: string | null;
  threadId: string;
}

function ownerWhere(o: CredentialOwner): SQL {
  return and(
    eq(credentials.scope, o.scope),
    eq(credentials.serverId, o.serverId),
    o.userId ? eq(credentials.userId, o.userId) : isNull(credentials.userId),
    eq(credentials.threadId, o.threadId),
  )!;
}

export class CredentialsRepository {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  async find(owner: CredentialOwner): Promise<CredentialRow | undefined> {
    const [row] = await this.#db.select().from(credentials).where(ownerWhere(owner));
    return row;
  }

  async upsert(
    owner: CredentialOwner,
    sealed: { keyId: string; wrappedKey: string; ciphertext: string; fieldNames: string },
  ): Promise<CredentialRow> {
    const [row] = await this.#db
      .insert(credentials)
      .values({ ...owner, ...sealed })
      .onConflictDoUpdate({
        target: [credentials.scope, credentials.serverId, credentials.userId, credentials.threadId],
        set: { ...sealed, updatedAt: new Date() },
      })
      .returning();
    return row!;
  }

  async delete(owner: CredentialOwner): Promise<boolean> {
    const rows = await this.#db
      .delete(credentials)
      .where(ownerWhere(owner))
      .returning({ id: credentials.id });
    return rows.length > 0;
  }

  async deleteForServer(serverId: string): Promise<void> {
    await this.#db.delete(credentials).where(eq(credentials.serverId, serverId));
  }

  /** A user's credentials with their server slugs (names only are used by callers). */
  async listForUser(userId: string) {
    return this.#db
      .select({ credential: credentials, slug: servers.slug })
      .from(credentials)
      .innerJoin(servers, eq(servers.id, credentials.serverId))
      .where(and(eq(credentials.scope, 'user'), eq(credentials.userId, userId)));
  }

  /** How many sealed records exist, and how many of them are under master key `keyId`. */
  async countByKey(keyId: string): Promise<{ total: number; underKey: number }> {
    const [row] = await this.#db
      .select({
        total: sql<number>`count(*)::int`,
        underKey: sql<number>`(count(*) filter (where ${credentials.keyId} = ${keyId}))::int`,
      })
      .from(credentials);
    return { total: Number(row?.total ?? 0), underKey: Number(row?.underKey ?? 0) };
  }

  /** Up to `limit` records not under master key `keyId`, in id order after `afterId` (keyset paging). */
  async listNotUnderKey(keyId: string, afterId: string | undefined, limit: number): Promise<CredentialRow[]> {
    return this.#db
      .select()
      .from(credentials)
      .where(and(ne(credentials.keyId, keyId), afterId ? gt(credentials.id, afterId) : undefined))
      .orderBy(asc(credentials.id))
      .limit(limit);
  }

  /**
   * Swaps a record's wrapped data key, only if the record still holds the one that was read
   * (compare-and-set: a value re-sealed meanwhile is never overwritten). The ciphertext and
   * `updated_at` stay: the secret itself did not change.
   */
  async replaceWrappedKey(
    id: string,
    expected: { keyId: string; wrappedKey: string },
    next: { keyId: string; wrappedKey: string },
  ): Promise<boolean> {
    const rows = await this.#db
      .update(credentials)
      .set({ keyId: next.keyId, wrappedKey: next.wrappedKey })
      .where(
        and(
          eq(credentials.id, id),
          eq(credentials.keyId, expected.keyId),
          eq(credentials.wrappedKey, expected.wrappedKey),
        ),
      )
      .returning({ id: credentials.id });
    return rows.length > 0;
  }
}
