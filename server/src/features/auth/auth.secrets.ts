import { randomBytes } from 'node:crypto';
import type { SealedStore } from '../../platform/crypto/sealed.store.ts';
import type { Vault } from '../../platform/crypto/vault.ts';
import type { AuthRepository } from './auth.repository.ts';

/** Binds a sealed setting to its name (the vault's additional authenticated data). */
const settingAad = (name: string) => `setting|${name}`;

/**
 * A secret shared by every replica (cookie keys, the OAuth signing key), created once by the
 * first process that needs it and stored sealed by the vault.
 */
export async function sharedSecret(
  repo: AuthRepository,
  vault: Vault,
  name: string,
  create: () => Promise<string> | string = () => randomBytes(32).toString('base64url'),
): Promise<string> {
  const aad = settingAad(name);
  const existing = await repo.getSetting(name);
  if (existing) return vault.open(existing, aad);
  const sealed = vault.seal(await create(), aad);
  const stored = await repo.putSettingIfAbsent({ name, ...sealed });
  return vault.open(stored, aad);
}

/** The sealed settings as a store the master-key rotation re-wraps (see CredentialsRotation). */
export function settingsSealedStore(repo: AuthRepository): SealedStore {
  return {
    name: 'sealed_settings',
    countByKey: (keyId) => repo.countSettingsByKey(keyId),
    async listNotUnderKey(keyId, afterId, limit) {
      const rows = await repo.listSettingsNotUnderKey(keyId, afterId, limit);
      return rows.map((row) => ({ id: row.name, sealed: row, aad: settingAad(row.name) }));
    },
    replaceWrappedKey: (name, expected, next) => repo.replaceSettingWrappedKey(name, expected, next),
  };
}
