import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseMasterKey, Vault, VaultError } from './vault.ts';

describe('Vault', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);

  it('round-trips, and the ciphertext does not contain the secret', () => {
    const vault = new Vault([k1]);
    const sealed = vault.seal('{"API_KEY":"sk-very-secret"}', 'user|s1|u1|');
    expect(JSON.stringify(sealed)).not.toContain('very-secret');
    expect(vault.open(sealed, 'user|s1|u1|')).toBe('{"API_KEY":"sk-very-secret"}');
  });

  it('refuses a record moved to another owner (AAD) or tampered with', () => {
    const vault = new Vault([k1]);
    const sealed = vault.seal('secret', 'user|s1|u1|');
    expect(() => vault.open(sealed, 'user|s1|u2|')).toThrow(VaultError);
    const flipped = sealed.ciphertext.slice(0, -2) + (sealed.ciphertext.endsWith('A') ? 'BB' : 'AA');
    expect(() => vault.open({ ...sealed, ciphertext: flipped }, 'user|s1|u1|')).toThrow(VaultError);
  });

  it('opens records of an older master key and re-wraps them under the new one', () => {
    const old = new Vault([k1]);
    const sealed = old.seal('secret', 'a');
    const rotated = new Vault([k2, k1]);
    expect(rotated.open(sealed, 'a')).toBe('secret');
    const rewrapped = rotated.rewrap(sealed, 'a');
    expect(rewrapped.keyId).toBe(rotated.currentKeyId);
    expect(rewrapped.ciphertext).toBe(sealed.ciphertext);
    expect(new Vault([k2]).open(rewrapped, 'a')).toBe('secret');
    expect(() => new Vault([k2]).open(sealed, 'a')).toThrow(/is not loaded/);
  });

  it('validates master keys', () => {
    expect(() => parseMasterKey('c2hvcnQ=')).toThrow(/32 bytes/);
    expect(parseMasterKey(k1.toString('base64'))).toHaveLength(32);
  });
});
