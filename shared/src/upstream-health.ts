import { z } from 'zod';

/**
 * Health of one upstream MCP server, as the health-check job last saw it:
 * - `up`: connected, answered `ping`, and listed its capabilities in time;
 * - `degraded`: answered, but slower than HEALTH_DEGRADED_MS or its capability listing failed;
 * - `down`: could not be connected to, or did not answer `ping` (the aggregate endpoint leaves it out);
 * - `unknown`: not checked (never yet, disabled, or it needs per-user credentials).
 */
export const UPSTREAM_STATUSES = ['up', 'degraded', 'down', 'unknown'] as const;
export const upstreamStatusSchema = z.enum(UPSTREAM_STATUSES);
export type UpstreamStatus = z.infer<typeof upstreamStatusSchema>;

/** One health check of one server. */
export interface UpstreamHealthCheck {
  status: UpstreamStatus;
  /** Round trip of the `ping` in milliseconds; null when the server was not reached. */
  latencyMs: number | null;
  /** Why it is not `up` (connection error, slow answer, reason it was skipped). Never a secret. */
  error: string | null;
  checkedAt: string;
}

/** `GET /api/servers/{slug}/health`: the latest check and the recent history, newest first. */
export interface UpstreamHealthView {
  server: string;
  status: UpstreamStatus;
  /** When the latest check ran; null when the server was never checked. */
  checkedAt: string | null;
  latencyMs: number | null;
  error: string | null;
  history: UpstreamHealthCheck[];
}
