import { desc, eq, sql } from 'drizzle-orm';
import type { Database } from '../../platform/db/database.ts';
import { serverHealthChecks } from './monitoring.schema.ts';

export type HealthCheckRow = typeof serverHealthChecks.$inferSelect;
export type HealthCheckInsert = typeof serverHealthChecks.$inferInsert;

export class MonitoringRepository {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  async insert(row: HealthCheckInsert): Promise<void> {
    await this.#db.insert(serverHealthChecks).values(row);
  }

  /** The newest check of every server that has one. */
  async latestPerServer(): Promise<HealthCheckRow[]> {
    return this.#db
      .selectDistinctOn([serverHealthChecks.serverId])
      .from(serverHealthChecks)
      .orderBy(serverHealthChecks.serverId, desc(serverHealthChecks.seq));
  }

  /** A server's checks, newest first. */
  async history(serverId: string, limit: number): Promise<HealthCheckRow[]> {
    return this.#db
      .select()
      .from(serverHealthChecks)
      .where(eq(serverHealthChecks.serverId, serverId))
      .orderBy(desc(serverHealthChecks.seq))
      .limit(limit);
  }

  /** Deletes all but the newest `keep` checks of every server. */
  async prune(keep: number): Promise<void> {
    await this.#db.execute(sql`
      delete from ${serverHealthChecks} where ${serverHealthChecks.seq} in (
        select seq from (
          select seq, row_number() over (partition by server_id order by seq desc) as rn
          from ${serverHealthChecks}
        ) ranked where ranked.rn > ${keep}
      )`);
  }
}
