import { and, asc, eq, gt, isNull, lt, lte, ne, sql, type SQL } from 'drizzle-orm';
import type { Database } from '../../platform/db/database.ts';
import { servers } from '../registry/registry.schema.ts';
import { credentials, oauthPendingAuthorizations } from './credentials.schema.ts';

export type CredentialRow = typeof credentials.$inferSelect;
export type PendingAuthorizationRow = typeof oauthPendingAuthorizations.$inferSelect;
export type CredentialKind = 'values' | 'oauth';
export interface CredentialOwner {
  scope: 'user' | 'server';
  kind: CredentialKind;
  serverId: string;
  userId: string | null;
  threadId: string;
}

function ownerWhere(o: CredentialOwner): SQL {
  return and(
    eq(credentials.scope, o.scope),
    eq(credentials.kind, o.kind),
    eq(credentials.serverId, o.serverId),
    o.userId ? eq(credentials.userId, o.userId) : isNull(credentials.userId),
    eq(credentials.threadId, o.threadId),
  )!;
}

/** What gets sealed and stored for one owner. */
export interface SealedRecord {
  keyId: string;
  wrappedKey: string;
  ciphertext: string;
  fieldNames?: string;
  expiresAt?: Date | null;
  status?: 'ok' | 'needs_consent';
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

  async findById(id: string): Promise<CredentialRow | undefined> {
    const [row] = await this.#db.select().from(credentials).where(eq(credentials.id, id));
    return row;
  }

  async upsert(owner: CredentialOwner, sealed: SealedRecord): Promise<CredentialRow> {
    const [row] = await this.#db
      .insert(credentials)
      .values({ ...owner, ...sealed })
      .onConflictDoUpdate({
        target: [
          credentials.scope,
          credentials.kind,
          credentials.serverId,
          credentials.userId,
          credentials.threadId,
        ],
        set: { ...sealed, updatedAt: new Date() },
      })
      .returning();
    return row!;
  }

  /**
   * Replaces a record's sealed content only if it still holds the version that was read
   * (compare-and-set on the ciphertext, which every seal makes unique and a master-key
   * re-wrap leaves alone): a refresh never overwrites tokens another process stored
   * meanwhile. Returns the new row, or undefined when the record changed.
   */
  async replaceIfUnchanged(
    id: string,
    expectedCiphertext: string,
    sealed: SealedRecord,
  ): Promise<CredentialRow | undefined> {
    const [row] = await this.#db
      .update(credentials)
      .set({ ...sealed, updatedAt: new Date() })
      .where(and(eq(credentials.id, id), eq(credentials.ciphertext, expectedCiphertext)))
      .returning();
    return row;
  }

  /** Marks a record `needs_consent` if it still holds the version that was read. */
  async markNeedsConsent(id: string, expectedCiphertext: string): Promise<boolean> {
    const rows = await this.#db
      .update(credentials)
      .set({ status: 'needs_consent', updatedAt: new Date() })
      .where(
        and(
          eq(credentials.id, id),
          eq(credentials.ciphertext, expectedCiphertext),
          eq(credentials.status, 'ok'),
        ),
      )
      .returning({ id: credentials.id });
    return rows.length > 0;
  }

  /** Users' OAuth token records in good standing whose access token expires before `before`. */
  async listOAuthExpiring(before: Date, limit: number): Promise<CredentialRow[]> {
    return this.#db
      .select()
      .from(credentials)
      .where(
        and(
          eq(credentials.kind, 'oauth'),
          eq(credentials.scope, 'user'),
          eq(credentials.status, 'ok'),
          lte(credentials.expiresAt, before),
        ),
      )
      .orderBy(asc(credentials.expiresAt))
      .limit(limit);
  }

  async insertPending(row: typeof oauthPendingAuthorizations.$inferInsert): Promise<void> {
    await this.#db.insert(oauthPendingAuthorizations).values(row);
  }

  async findPending(state: string): Promise<PendingAuthorizationRow | undefined> {
    const [row] = await this.#db
      .select()
      .from(oauthPendingAuthorizations)
      .where(eq(oauthPendingAuthorizations.state, state));
    return row;
  }

  /**
   * Uses up a pending authorization: only once, only before it expires, only by the user who
   * started it. Undefined when any of that does not hold (nothing changes then).
   */
  async consumePending(
    state: string,
    userId: string,
    now: Date,
  ): Promise<PendingAuthorizationRow | undefined> {
    const [row] = await this.#db
      .update(oauthPendingAuthorizations)
      .set({ usedAt: now })
      .where(
        and(
          eq(oauthPendingAuthorizations.state, state),
          eq(oauthPendingAuthorizations.userId, userId),
          isNull(oauthPendingAuthorizations.usedAt),
          gt(oauthPendingAuthorizations.expiresAt, now),
        ),
      )
      .returning();
    return row;
  }

  /** Pending authorizations sealed under master key `keyId`, and in all (for key rotation). */
  async countPendingByKey(keyId: string): Promise<{ total: number; underKey: number }> {
    const [row] = await this.#db
      .select({
        total: sql<number>`count(*)::int`,
        underKey: sql<number>`(count(*) filter (where ${oauthPendingAuthorizations.keyId} = ${keyId}))::int`,
      })
      .from(oauthPendingAuthorizations);
    return { total: Number(row?.total ?? 0), underKey: Number(row?.underKey ?? 0) };
  }

  /** Up to `limit` pending authorizations not under `keyId`, in state order after `afterState`. */
  async listPendingNotUnderKey(
    keyId: string,
    afterState: string | undefined,
    limit: number,
  ): Promise<PendingAuthorizationRow[]> {
    return this.#db
      .select()
      .from(oauthPendingAuthorizations)
      .where(
        and(
          ne(oauthPendingAuthorizations.keyId, keyId),
          afterState ? gt(oauthPendingAuthorizations.state, afterState) : undefined,
        ),
      )
      .orderBy(asc(oauthPendingAuthorizations.state))
      .limit(limit);
  }

  /** Compare-and-set of a pending authorization's wrapped data key (see replaceWrappedKey). */
  async replacePendingWrappedKey(
    state: string,
    expected: { keyId: string; wrappedKey: string },
    next: { keyId: string; wrappedKey: string },
  ): Promise<boolean> {
    const rows = await this.#db
      .update(oauthPendingAuthorizations)
      .set({ keyId: next.keyId, wrappedKey: next.wrappedKey })
      .where(
        and(
          eq(oauthPendingAuthorizations.state, state),
          eq(oauthPendingAuthorizations.keyId, expected.keyId),
          eq(oauthPendingAuthorizations.wrappedKey, expected.wrappedKey),
        ),
      )
      .returning({ state: oauthPendingAuthorizations.state });
    return rows.length > 0;
  }

  /** Deletes pending authorizations that expired before `before` (used or not). */
  async deleteExpiredPending(before: Date): Promise<number> {
    const rows = await this.#db
      .delete(oauthPendingAuthorizations)
      .where(lt(oauthPendingAuthorizations.expiresAt, before))
      .returning({ state: oauthPendingAuthorizations.state });
    return rows.length;
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
    await this.#db
      .delete(oauthPendingAuthorizations)
      .where(eq(oauthPendingAuthorizations.serverId, serverId));
  }

  /** Deletes every credential (values and OAuth tokens) and pending authorization of one thread. */
  async deleteForThread(userId: string, threadId: string): Promise<number> {
    const rows = await this.#db
      .delete(credentials)
      .where(and(eq(credentials.userId, userId), eq(credentials.threadId, threadId)))
      .returning({ id: credentials.id });
    await this.#db
      .delete(oauthPendingAuthorizations)
      .where(
        and(eq(oauthPendingAuthorizations.userId, userId), eq(oauthPendingAuthorizations.threadId, threadId)),
      );
    return rows.length;
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
