import type { JobRegistry } from '../../platform/jobs/job.registry.ts';
import type { CredentialsRotation } from './credentials.rotation.ts';

/** Registers `credentials.rewrap`: re-wraps records still under an earlier master key. */
export function defineCredentialsJobs(registry: JobRegistry, deps: { rotation: CredentialsRotation }): void {
  registry.define({
    name: 'credentials.rewrap',
    attempts: 3,
    backoffMs: 5_000,
    async handler(payload) {
      // Idempotent: a retry (or a second replica's job) only touches what is still left.
      await deps.rotation.rewrapAll({ trigger: 'job', batchSize: payload.batchSize });
    },
  });
}
