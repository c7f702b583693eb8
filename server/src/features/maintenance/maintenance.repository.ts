import { desc, sql } from 'drizzle-orm';
import type { Database } from '../../platform/db/database.ts';
import { jobHeartbeats } from './maintenance.schema.ts';

export class MaintenanceRepository {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  /** Records one heartbeat for a runner, creating its row on the first. */
  async recordHeartbeat(runnerId: string, runner: string, source: string): Promise<void> {
    await this.#db
      .insert(jobHeartbeats)
      .values({ runnerId, runner, source })
      .onConflictDoUpdate({
        target: jobHeartbeats.runnerId,
        set: { beats: sql`${jobHeartbeats.beats} + 1`, lastBeatAt: sql`now()`, source },
      });
  }

  async listHeartbeats() {
    return this.#db.select().from(jobHeartbeats).orderBy(desc(jobHeartbeats.lastBeatAt));
  }
}
