import { and, eq, isNull, type SQL } from 'drizzle-orm';
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
    const rows = await this.#db.delete(credentials).where(ownerWhere(owner)).returning({ id: credentials.id });
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
}
