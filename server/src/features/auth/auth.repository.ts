import { and, asc, eq, gt, lt, ne, sql } from 'drizzle-orm';
import type { Database } from '../../platform/db/database.ts';
import { oauthStore, sealedSettings, webSessions } from './auth.schema.ts';

export type OAuthRow = typeof oauthStore.$inferSelect;

/** Storage for web sessions, the OAuth server's records, and sealed shared settings. */
export class AuthRepository {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  // ----- web sessions -----
  async getSession(sid: string) {
    const [row] = await this.#db.select().from(webSessions).where(eq(webSessions.sid, sid));
    return row;
  }
  async setSession(sid: string, sess: Record<string, unknown>, expiresAt: Date) {
    await this.#db
      .insert(webSessions)
      .values({ sid, sess, expiresAt })
      .onConflictDoUpdate({ target: webSessions.sid, set: { sess, expiresAt } });
  }
  async touchSession(sid: string, expiresAt: Date) {
    await this.#db.update(webSessions).set({ expiresAt }).where(eq(webSessions.sid, sid));
  }
  async destroySession(sid: string) {
    await this.#db.delete(webSessions).where(eq(webSessions.sid, sid));
  }
  async deleteExpiredSessions(now: Date) {
    await this.#db.delete(webSessions).where(lt(webSessions.expiresAt, now));
  }

  // ----- OAuth server storage -----
  async oauthUpsert(row: typeof oauthStore.$inferInsert) {
    await this.#db
      .insert(oauthStore)
      .values(row)
      .onConflictDoUpdate({
        target: oauthStore.key,
        set: {
          payload: row.payload,
          grantId: row.grantId ?? null,
          userCode: row.userCode ?? null,
          uid: row.uid ?? null,
          accountId: row.accountId ?? null,
          expiresAt: row.expiresAt ?? null,
        },
      });
  }
  async oauthFind(key: string): Promise<OAuthRow | undefined> {
    const [row] = await this.#db.select().from(oauthStore).where(eq(oauthStore.key, key));
    return row;
  }
  async oauthFindBy(model: string, field: 'uid' | 'userCode', value: string): Promise<OAuthRow | undefined> {
    const column = field === 'uid' ? oauthStore.uid : oauthStore.userCode;
    const [row] = await this.#db
      .select()
      .from(oauthStore)
      .where(and(eq(oauthStore.model, model), eq(column, value)));
    return row;
  }
  async oauthConsume(key: string) {
    await this.#db
      .update(oauthStore)
      .set({ consumedAt: sql`now()` })
      .where(eq(oauthStore.key, key));
  }
  async oauthDestroy(key: string) {
    await this.#db.delete(oauthStore).where(eq(oauthStore.key, key));
  }
  async oauthRevokeByGrantId(grantId: string) {
    await this.#db.delete(oauthStore).where(eq(oauthStore.grantId, grantId));
  }
  async oauthDeleteExpired(now: Date) {
    await this.#db.delete(oauthStore).where(lt(oauthStore.expiresAt, now));
  }
  /** Grants (model Grant) of one account, or of everyone when accountId is undefined. */
  async oauthGrants(accountId?: string): Promise<OAuthRow[]> {
    return this.#db
      .select()
      .from(oauthStore)
      .where(
        accountId
          ? and(eq(oauthStore.model, 'Grant'), eq(oauthStore.accountId, accountId))
          : eq(oauthStore.model, 'Grant'),
      );
  }

  // ----- sealed settings -----
  async getSetting(name: string) {
    const [row] = await this.#db.select().from(sealedSettings).where(eq(sealedSettings.name, name));
    return row;
  }
  /** Inserts unless present (first writer wins across replicas); returns the stored row. */
  async putSettingIfAbsent(row: typeof sealedSettings.$inferInsert) {
    await this.#db.insert(sealedSettings).values(row).onConflictDoNothing();
    return (await this.getSetting(row.name))!;
  }

  // ----- master-key rotation of sealed settings -----
  async countSettingsByKey(keyId: string): Promise<{ total: number; underKey: number }> {
    const [row] = await this.#db
      .select({
        total: sql<number>`count(*)::int`,
        underKey: sql<number>`(count(*) filter (where ${sealedSettings.keyId} = ${keyId}))::int`,
      })
      .from(sealedSettings);
    return { total: Number(row?.total ?? 0), underKey: Number(row?.underKey ?? 0) };
  }
  async listSettingsNotUnderKey(keyId: string, afterName: string | undefined, limit: number) {
    return this.#db
      .select()
      .from(sealedSettings)
      .where(and(ne(sealedSettings.keyId, keyId), afterName ? gt(sealedSettings.name, afterName) : undefined))
      .orderBy(asc(sealedSettings.name))
      .limit(limit);
  }
  /** Swaps the wrapped data key only if the row still holds the one that was read. */
  async replaceSettingWrappedKey(
    name: string,
    expected: { keyId: string; wrappedKey: string },
    next: { keyId: string; wrappedKey: string },
  ): Promise<boolean> {
    const rows = await this.#db
      .update(sealedSettings)
      .set({ keyId: next.keyId, wrappedKey: next.wrappedKey })
      .where(
        and(
          eq(sealedSettings.name, name),
          eq(sealedSettings.keyId, expected.keyId),
          eq(sealedSettings.wrappedKey, expected.wrappedKey),
        ),
      )
      .returning({ name: sealedSettings.name });
    return rows.length > 0;
  }
}
