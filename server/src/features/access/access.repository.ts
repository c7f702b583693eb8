import { eq } from 'drizzle-orm';
import type { Database } from '../../platform/db/database.ts';
import { servers } from '../registry/registry.schema.ts';
import { accessRules } from './access.schema.ts';

export type AccessRuleRow = typeof accessRules.$inferSelect;

export class AccessRepository {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  /** Every rule with its server's slug. */
  async listWithSlugs() {
    return this.#db
      .select({ rule: accessRules, slug: servers.slug })
      .from(accessRules)
      .innerJoin(servers, eq(servers.id, accessRules.serverId))
      .orderBy(accessRules.createdAt);
  }

  async insert(values: typeof accessRules.$inferInsert): Promise<AccessRuleRow> {
    const [row] = await this.#db.insert(accessRules).values(values).returning();
    return row!;
  }

  async delete(id: string): Promise<boolean> {
    const rows = await this.#db
      .delete(accessRules)
      .where(eq(accessRules.id, id))
      .returning({ id: accessRules.id });
    return rows.length > 0;
  }
}
