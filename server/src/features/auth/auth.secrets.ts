import { randomBytes } from 'node:crypto';
import type { Vault } from '../../platform/crypto/vault.ts';
import type { AuthRepository } from './auth.repository.ts';

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
  const aad = `setting|${name}`;
  const existing = await repo.getSetting(name);
  if (existing) return vault.open(existing, aad);
  const sealed = vault.seal(await create(), aad);
  const stored = await repo.putSettingIfAbsent({ name, ...sealed });
  return vault.open(stored, aad);
}
