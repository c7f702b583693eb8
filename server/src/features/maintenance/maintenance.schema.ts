import { integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/** One row per job runner instance: proves jobs run, and when they last did. */
export const jobHeartbeats = pgTable('job_heartbeats', {
  /** `<runner>:<hostname>:<pid>` of the process that ran the job. */
  runnerId: text('runner_id').primaryKey(),
  /** `bullmq` or `in-process`. */
  runner: text('runner').notNull(),
  source: text('source').notNull(),
  beats: integer('beats').notNull().default(1),
  lastBeatAt: timestamp('last_beat_at', { withTimezone: true }).notNull().defaultNow(),
});
