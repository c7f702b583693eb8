import { asc, eq } from 'drizzle-orm';
import type { Database } from '../../platform/db/database.ts';
import { servers } from './registry.schema.ts';

export type ServerRow = typeof servers.$inferSelect;
export type ServerInsert = typeof servers.$inferInsert;

export class RegistryRepository {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  async insert(values: ServerInsert): Promise<ServerRow> {
    const [row] = await this.#db.insert(servers).values(values).returning();
    return row!;
  }

  async findBySlug(slug: string): Promise<ServerRow | undefined> {
    const [row] = await this.#db.select().from(servers).where(eq(servers.slug, slug));
    return row;
  }

  async list(): Promise<ServerRow[]> {
    return this.#db.select().from(servers).orderBy(asc(servers.slug));
  }

  async update(id: string, values: Partial<ServerInsert>): Promise<ServerRow | undefined> {
    const [row] = await this.#db
      .update(servers)
      .set({ ...values, updatedAt: new Date() })
      .where(eq(servers.id, id))
      .returning();
    return row;
  }

  async delete(id: string): Promise<void> {
    await this.#db.delete(servers).where(eq(servers.id, id));
  }
}
