import { z } from 'zod';

/** One dependency's state in `GET /readyz`. */
export const readinessCheckSchema = z.object({
  ok: z.boolean(),
  /** Milliseconds the probe took. */
  latencyMs: z.number(),
  /** Why it is not ok; never contains a secret (connection strings are not echoed). */
  error: z.string().optional(),
});

/** Body of `GET /readyz`: 200 when every check is ok, 503 otherwise. */
export const readinessSchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z.record(z.string(), readinessCheckSchema),
});
export type Readiness = z.infer<typeof readinessSchema>;

/** Body of `GET /healthz`: the process is alive and serving HTTP. */
export const livenessSchema = z.object({
  status: z.literal('ok'),
  version: z.string(),
  uptimeSeconds: z.number(),
});
export type Liveness = z.infer<typeof livenessSchema>;
