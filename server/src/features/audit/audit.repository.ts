import { and, desc, eq, gte, lt, lte, type SQL } from 'drizzle-orm';
import type { Database } from '../../platform/db/database.ts';
import { auditEvents } from './audit.schema.ts';

export type AuditRow = typeof auditEvents.$inferSelect;
export type AuditInsert = typeof auditEvents.$inferInsert;

export interface AuditFilter {
  userId?: string | undefined;
  serverSlug?: string | undefined;
  action?: string | undefined;
  toolName?: string | undefined;
  status?: 'ok' | 'error' | 'denied' | undefined;
  category?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  /** Only events older than this sequence number (cursor pagination, newest first). */
  beforeSeq?: number | undefined;
}

export class AuditRepository {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  async insertMany(rows: AuditInsert[]): Promise<void> {
    if (rows.length) await this.#db.insert(auditEvents).values(rows);
  }

  /** Newest first, `limit` rows. */
  async query(filter: AuditFilter, limit: number): Promise<AuditRow[]> {
    const where: SQL[] = [];
    if (filter.userId) where.push(eq(auditEvents.userId, filter.userId));
    if (filter.serverSlug) where.push(eq(auditEvents.serverSlug, filter.serverSlug));
    if (filter.action) where.push(eq(auditEvents.action, filter.action));
    if (filter.toolName) where.push(eq(auditEvents.toolName, filter.toolName));
    if (filter.status) where.push(eq(auditEvents.status, filter.status));
    if (filter.category) where.push(eq(auditEvents.category, filter.category));
    if (filter.from) where.push(gte(auditEvents.at, filter.from));
    if (filter.to) where.push(lte(auditEvents.at, filter.to));
    if (filter.beforeSeq !== undefined) where.push(lt(auditEvents.seq, filter.beforeSeq));
    return this.#db
      .select()
      .from(auditEvents)
      .where(where.length ? and(...where) : undefined)
      .orderBy(desc(auditEvents.seq))
      .limit(limit);
  }
}
