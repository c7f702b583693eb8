import type { KeyRotationReport } from '@gateway/shared';
import type { SealedStore } from '../../platform/crypto/sealed.store.ts';
import { VaultError, type Sealed, type Vault } from '../../platform/crypto/vault.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditSink } from '../../core/audit.ts';
import type { Principal } from '../../core/principal.ts';
import type { CredentialsRepository } from './credentials.repository.ts';
import { aad } from './credentials.service.ts';

// credentials.oauth.ts names the store interface from here.
export type { SealedStore };

/** The credentials table as a sealed store (users' and servers' upstream secrets). */
export function credentialsSealedStore(repo: CredentialsRepository): SealedStore {
  return {
    name: 'credentials',
    countByKey: (keyId) => repo.countByKey(keyId),
    async listNotUnderKey(keyId, afterId, limit) {
      const rows = await repo.listNotUnderKey(keyId, afterId, limit);
      return rows.map((row) => ({ id: row.id, sealed: row, aad: aad(row) }));
    },
    replaceWrappedKey: (id, expected, next) => repo.replaceWrappedKey(id, expected, next),
  };
}

/** Who started a re-wrap run: recorded in its audit event. */
export type RotationTrigger = 'cli' | 'api' | 'job';

/**
 * Master-key rotation: re-wraps every sealed record's data key, in every sealed store (the
 * credentials table, the identity feature's sealed settings), under the current master key
 * (ENCRYPTION_KEY), opening it with whichever loaded key sealed it (ENCRYPTION_PREVIOUS_KEYS).
 *
 * Safe beside running servers: records are read in batches (keyset paging over ids) and each
 * one is swapped by compare-and-set, so a value re-sealed meanwhile is left alone; every
 * reader has the old keys loaded, so records open whichever key holds them at that moment.
 * Idempotent: records already under the current key are never touched, so a second run (or
 * two runs at once, from two processes) does nothing more.
 */
export class CredentialsRotation {
  readonly #stores: readonly SealedStore[];
  readonly #vault: Vault;
  readonly #audit: AuditSink;
  readonly #logger: Logger;

  constructor(deps: { stores: readonly SealedStore[]; vault: Vault; audit: AuditSink; logger: Logger }) {
    this.#stores = deps.stores;
    this.#vault = deps.vault;
    this.#audit = deps.audit;
    this.#logger = deps.logger.child({ feature: 'credentials' });
  }

  /** Records not under the current master key (one count query per store). */
  async pending(): Promise<number> {
    let pending = 0;
    for (const store of this.#stores) {
      const { total, underKey } = await store.countByKey(this.#vault.currentKeyId);
      pending += total - underKey;
    }
    return pending;
  }

  /** Re-wraps every record not under the current key; one audit event per run (counts only). */
  async rewrapAll(options: {
    trigger: RotationTrigger;
    batchSize?: number | undefined;
    principal?: Principal | undefined;
  }): Promise<KeyRotationReport> {
    const started = performance.now();
    const batchSize = options.batchSize ?? 200;
    const currentKeyId = this.#vault.currentKeyId;
    const report: KeyRotationReport = {
      currentKeyId,
      total: 0,
      alreadyCurrent: 0,
      rewrapped: 0,
      skipped: 0,
      failed: 0,
      missingKeyIds: [],
      durationMs: 0,
    };
    const missing = new Set<string>();
    let failure: unknown;
    try {
      for (const store of this.#stores) {
        const counts = await store.countByKey(currentKeyId);
        report.total += counts.total;
        report.alreadyCurrent += counts.underKey;
        await this.#rewrapStore(store, batchSize, report, missing);
      }
    } catch (err) {
      failure = err;
    }
    report.missingKeyIds = [...missing].sort();
    report.durationMs = Math.round(performance.now() - started);
    const { principal } = options;
    const problem = failure
      ? `re-wrap stopped: ${(failure as Error).message}`
      : report.failed
        ? `${report.failed} records could not be opened` +
          (missing.size ? ` (master keys not loaded: ${report.missingKeyIds.join(', ')})` : '')
        : undefined;
    this.#audit.record({
      category: 'admin',
      action: 'credentials.rewrap',
      status: problem ? 'error' : 'ok',
      userId: principal?.userId ?? null,
      apiKeyId: principal?.apiKeyId ?? null,
      error: problem ?? null,
      details: { trigger: options.trigger, ...report },
    });
    const log = { trigger: options.trigger, ...report };
    if (problem) this.#logger.error(log, `credentials re-wrap: ${problem}`);
    else if (report.rewrapped) this.#logger.info(log, 'credentials re-wrapped under the current master key');
    else this.#logger.debug(log, 'credentials re-wrap: nothing to do');
    if (failure) throw failure;
    return report;
  }

  async #rewrapStore(store: SealedStore, batchSize: number, report: KeyRotationReport, missing: Set<string>) {
    const currentKeyId = this.#vault.currentKeyId;
    let after: string | undefined;
    for (;;) {
      const records = await store.listNotUnderKey(currentKeyId, after, batchSize);
      for (const record of records) {
        after = record.id;
        let next: Sealed;
        try {
          next = this.#vault.rewrap(record.sealed, record.aad);
        } catch (err) {
          // Left as it is (it still opens wherever its key is loaded); the run goes on.
          report.failed++;
          if (err instanceof VaultError && /not loaded/.test(err.message)) missing.add(record.sealed.keyId);
          continue;
        }
        if (await store.replaceWrappedKey(record.id, record.sealed, next)) report.rewrapped++;
        else report.skipped++;
      }
      this.#logger.debug({ store: store.name, batch: records.length }, 're-wrap batch done');
      if (records.length < batchSize) return;
    }
  }
}
