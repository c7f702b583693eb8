import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logging/logger.ts';

/** A sealed secret as stored: which master key wrapped its data key, the wrapped key, the ciphertext. */
export interface Sealed {
  keyId: string;
  wrappedKey: string;
  ciphertext: string;
}

/** Opening failed: wrong key, tampered record, or a record moved to another owner. */
export class VaultError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaultError';
  }
}

const keyIdOf = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 12);

function encrypt(key: Buffer, plaintext: Buffer, aad: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [iv, cipher.getAuthTag(), ct].map((b) => b.toString('base64url')).join('.');
}

function decrypt(key: Buffer, sealed: string, aad: Buffer): Buffer {
  const [iv, tag, ct] = sealed.split('.').map((p) => Buffer.from(p, 'base64url'));
  if (!iv || !tag || !ct) throw new VaultError('malformed sealed value');
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    throw new VaultError('sealed value failed authentication');
  }
}

/**
 * Envelope encryption with AES-256-GCM: every record gets its own random data key, which is
 * wrapped by a master key. `aad` binds a record to its owner (scope, server, user, thread),
 * so a ciphertext copied onto another user's row does not open. Several master keys may be
 * loaded: the first seals, all open, which lets records re-wrap in the background after a
 * key rotation.
 */
export class Vault {
  readonly #keys: Map<string, Buffer>;
  readonly #current: string;

  /** @param masterKeys 32-byte keys; the first one seals new records. */
  constructor(masterKeys: Buffer[]) {
    if (!masterKeys.length) throw new Error('vault needs at least one master key');
    for (const k of masterKeys) if (k.length !== 32) throw new Error('master keys must be 32 bytes');
    this.#keys = new Map(masterKeys.map((k) => [keyIdOf(k), k]));
    this.#current = keyIdOf(masterKeys[0]!);
  }

  get currentKeyId(): string {
    return this.#current;
  }

  seal(plaintext: string, aad: string): Sealed {
    const dataKey = randomBytes(32);
    const aadBuf = Buffer.from(aad);
    return {
      keyId: this.#current,
      wrappedKey: encrypt(this.#keys.get(this.#current)!, dataKey, aadBuf),
      ciphertext: encrypt(dataKey, Buffer.from(plaintext, 'utf8'), aadBuf),
    };
  }

  open(sealed: Sealed, aad: string): string {
    const master = this.#keys.get(sealed.keyId);
    if (!master) throw new VaultError(`master key ${sealed.keyId} is not loaded`);
    const aadBuf = Buffer.from(aad);
    const dataKey = decrypt(master, sealed.wrappedKey, aadBuf);
    return decrypt(dataKey, sealed.ciphertext, aadBuf).toString('utf8');
  }

  /** Re-wraps the data key under the current master key; the ciphertext is unchanged. */
  rewrap(sealed: Sealed, aad: string): Sealed {
    if (sealed.keyId === this.#current) return sealed;
    const master = this.#keys.get(sealed.keyId);
    if (!master) throw new VaultError(`master key ${sealed.keyId} is not loaded`);
    const aadBuf = Buffer.from(aad);
    const dataKey = decrypt(master, sealed.wrappedKey, aadBuf);
    return {
      keyId: this.#current,
      wrappedKey: encrypt(this.#keys.get(this.#current)!, dataKey, aadBuf),
      ciphertext: sealed.ciphertext,
    };
  }
}

/** Parses a base64 32-byte key; throws naming the problem (never the key). */
export function parseMasterKey(value: string): Buffer {
  const key = Buffer.from(value.trim(), 'base64');
  if (key.length !== 32) throw new Error('must be 32 bytes, base64-encoded (openssl rand -base64 32)');
  return key;
}

/**
 * The embedded default's master key: read from DATA_DIR/encryption.key, created (mode 600)
 * on first start with a warning. Production requires ENCRYPTION_KEY instead.
 */
export async function loadOrCreateLocalKey(dataDir: string, logger: Logger): Promise<Buffer> {
  const file = path.join(dataDir, 'encryption.key');
  try {
    return parseMasterKey(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot use the local encryption key ${file}: ${(err as Error).message}`);
    }
  }
  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(32);
  await writeFile(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  logger.warn(
    { file },
    'generated a local encryption key for stored secrets; set ENCRYPTION_KEY in production and keep a backup of this file',
  );
  return key;
}
