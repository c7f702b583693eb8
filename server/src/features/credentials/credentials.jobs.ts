import type { JobRegistry } from '../../platform/jobs/job.registry.ts';
import type { UpstreamOAuthService } from './upstream-oauth.service.ts';
import type { CredentialsRotation } from './credentials.rotation.ts';

/**
 * Registers `credentials.rewrap` (re-wraps records still under an earlier master key) and
 * `credentials.refresh` (every `refreshIntervalMs`: refreshes upstream OAuth tokens before
 * they expire).
 */
export function defineCredentialsJobs(
  registry: JobRegistry,
  deps: {
    rotation: CredentialsRotation;
    upstreamOAuth: UpstreamOAuthService;
    refreshIntervalMs: number;
    /** Runs before each refresh run (e.g. dropping this process's registry cache). */
    beforeRefresh?: (() => void) | undefined;
  },
): void {
  registry.define({
    name: 'credentials.rewrap',
    attempts: 3,
    backoffMs: 5_000,
    async handler(payload) {
      // Idempotent: a retry (or a second replica's job) only touches what is still left.
      await deps.rotation.rewrapAll({ trigger: 'job', batchSize: payload.batchSize });
    },
  });
  registry.define({
    name: 'credentials.refresh',
    // One attempt: a token that failed is due again at the next run anyway.
    attempts: 1,
    schedule: { everyMs: deps.refreshIntervalMs, payload: { source: 'schedule' } },
    async handler() {
      deps.beforeRefresh?.();
      await deps.upstreamOAuth.refreshDue();
    },
  });
}
