import { z } from 'zod';
import { slugSchema } from './servers.ts';

/**
 * Every background job, with the schema of its payload. Both job runners (BullMQ in the
 * workers process, the in-process scheduler without Redis) accept only these names, and
 * start-up fails when one of them has no handler.
 */
export const jobPayloadSchemas = {
  /** Proves the job pipeline end to end: records that a runner is alive. */
  'maintenance.heartbeat': z.object({
    /** Free text carried into the heartbeat row, for tracing a job back to its producer. */
    source: z.string().max(200).default('schedule'),
  }),
  /** Connects to every enabled upstream (or the one named), pings it, records its health. */
  'health.check': z.object({
    source: z.string().max(200).default('schedule'),
    /** Check this server only. */
    server: slugSchema.optional(),
  }),
  /** Re-wraps stored secrets still under an earlier master key (after ENCRYPTION_KEY changed). */
  'credentials.rewrap': z.object({
    /** Records per database round trip. */
    batchSize: z.number().int().min(1).max(10_000).default(200),
  }),
  /**
   * Refreshes upstream OAuth tokens that expire within CREDENTIALS_REFRESH_MARGIN_SECONDS
   * (one refresh per token across processes, under a lock); a refused grant needs the
   * user's consent again.
   */
  'credentials.refresh': z.object({
    source: z.string().max(200).default('schedule'),
  }),
  /** Deletes audit events older than AUDIT_RETENTION_DAYS (a prefix of the chain) and records a checkpoint. */
  'audit.retention': z.object({}),
  /** Writes the audit events recorded since the last export to a JSONL file in AUDIT_EXPORT_DIR. */
  'audit.export': z.object({}),
} as const;

export type JobName = keyof typeof jobPayloadSchemas;
export type JobPayload<N extends JobName> = z.infer<(typeof jobPayloadSchemas)[N]>;
export const JOB_NAMES = Object.keys(jobPayloadSchemas) as JobName[];
