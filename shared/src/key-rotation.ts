import { z } from 'zod';

/** `POST /api/admin/keys/rotate` body. */
export const rotateKeysSchema = z
  .object({
    /** Records re-wrapped per database round trip. */
    batchSize: z.number().int().min(1).max(10_000).default(200),
  })
  .strict();
export type RotateKeys = z.infer<typeof rotateKeysSchema>;

/**
 * What one re-wrap run did (counts only: never a value). Re-wrapping puts each record's data
 * key under the current master key (ENCRYPTION_KEY); the ciphertext itself does not change.
 */
export interface KeyRotationReport {
  /** Id of the current master key (a hash prefix, not the key). */
  currentKeyId: string;
  /** Sealed records found. */
  total: number;
  /** Records that were already under the current key and were left alone. */
  alreadyCurrent: number;
  /** Records re-wrapped by this run. */
  rewrapped: number;
  /** Records changed by someone else during the run (already re-sealed): left alone. */
  skipped: number;
  /** Records that could not be opened (their key is not loaded, or they fail authentication). */
  failed: number;
  /** Key ids of records whose master key is not in ENCRYPTION_KEY / ENCRYPTION_PREVIOUS_KEYS. */
  missingKeyIds: string[];
  durationMs: number;
}
