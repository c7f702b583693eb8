import type { Sealed } from './vault.ts';

/** One vault-sealed record as rotation sees it: its id in its table, the sealed value, its AAD. */
export interface SealedRecord {
  id: string;
  sealed: Sealed;
  aad: string;
}

/**
 * A table of vault-sealed records. Every feature that seals with the vault provides one, so
 * a rotation re-wraps every secret and the old master key can then be dropped.
 */
export interface SealedStore {
  /** The table's name, for logs. */
  readonly name: string;
  /** How many records the table holds, and how many of them are under master key `keyId`. */
  countByKey(keyId: string): Promise<{ total: number; underKey: number }>;
  /** Up to `limit` records not under `keyId`, in id order after `afterId`. */
  listNotUnderKey(keyId: string, afterId: string | undefined, limit: number): Promise<SealedRecord[]>;
  /** Compare-and-set of the wrapped data key; false when the record changed since it was read. */
  replaceWrappedKey(
    id: string,
    expected: Pick<Sealed, 'keyId' | 'wrappedKey'>,
    next: Pick<Sealed, 'keyId' | 'wrappedKey'>,
  ): Promise<boolean>;
}
