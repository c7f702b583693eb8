import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKeyView, CreateApiKey, CreatedApiKey } from '@gateway/shared';
import { AppError, forbidden, notFound } from '../../platform/http/errors.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import { isAdmin, isUnrestricted, type Principal } from '../../core/principal.ts';
import type { UsersRepository } from '../users/index.ts';
import type { ApiKeyRow, KeysRepository } from './keys.repository.ts';

/** Every key starts with this, so secret scanners and people recognise it. */
export const KEY_PREFIX = 'mgw_';
const CACHE_TTL_MS = 10_000;
const TOUCH_EVERY_MS = 60_000;

const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');

/**
 * Key management is for credentials that reach everything their user may: a key given to
 * one tool for one server must not list, revoke or mint the user's other keys.
 */
function requireUnrestricted(principal: Principal) {
  if (!isUnrestricted(principal))
    throw forbidden(
      'managing API keys needs an unrestricted credential; this key is limited to some servers (use the web UI or a key without a server scope)',
    );
}

export function toView(row: ApiKeyRow): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    userId: row.userId,
    servers: row.servers ?? null,
    expiresAt: row.expiresAt?.toISOString() ?? null,
    revokedAt: row.revokedAt?.toISOString() ?? null,
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
  };
}

/** Why a presented key was refused (for the audit trail; the caller only sees 401). */
export type KeyRejection = 'unknown' | 'revoked' | 'expired' | 'malformed';

/**
 * API keys: created with 256 bits of randomness, shown once, stored as a SHA-256. Lookups
 * are cached for a few seconds so the per-message path does not query the database; a
 * revocation clears this process's cache at once, and other replicas' through the change
 * feed (`onRevoke` publishes, `forget` applies) or, should a message be lost, within the TTL.
 */
export class KeysService {
  readonly #repo: KeysRepository;
  readonly #users: UsersRepository;
  readonly #logger: Logger;
  #generation = 0;
  readonly #cache = new Map<string, { at: number; row: Awaited<ReturnType<KeysRepository['findByHash']>> }>();
  readonly #touched = new Map<string, number>();

  readonly #onRevoke: (() => void) | undefined;

  constructor(repo: KeysRepository, users: UsersRepository, logger: Logger, onRevoke?: () => void) {
    this.#repo = repo;
    this.#users = users;
    this.#logger = logger;
    this.#onRevoke = onRevoke;
  }

  /**
   * Forgets every cached lookup: the next request with any key reads the key and its user
   * again. Called when a user's role, groups or disabled mark changed, or a key was revoked
   * in another process, so open MCP sessions see the change at their next request.
   */
  forget(): void {
    this.#generation++;
    this.#cache.clear();
  }

  /** Whether the key exists, is not revoked and has not expired (re-checks of open sessions). */
  async isActive(id: string): Promise<boolean> {
    const row = await this.#repo.findById(id);
    return Boolean(row && !row.revokedAt && (!row.expiresAt || row.expiresAt.getTime() > Date.now()));
  }

  /** Creates a key; `checkServers` (after the credential check) refuses a scope naming unknown servers. */
  async create(
    principal: Principal,
    input: CreateApiKey,
    checkServers?: (servers: readonly string[]) => Promise<void>,
  ): Promise<CreatedApiKey> {
    requireUnrestricted(principal);
    if (input.servers && checkServers) await checkServers(input.servers);
    const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const row = await this.#repo.insert({
      userId: principal.userId,
      name: input.name,
      prefix: key.slice(0, 12),
      hash: hashKey(key),
      servers: input.servers ?? null,
      expiresAt: input.expiresAt ? new Date(input.expiresAt) : null,
    });
    return { ...toView(row), key };
  }

  async list(principal: Principal, options: { all?: boolean } = {}): Promise<ApiKeyView[]> {
    requireUnrestricted(principal);
    if (options.all && !isAdmin(principal)) throw forbidden('only admins can list every key');
    const rows = await this.#repo.list(options.all ? undefined : principal.userId);
    return rows.map(toView);
  }

  /**
   * Revokes a key of the caller's own (admins: anyone's). Someone else's key is "not found".
   * Like create and list, it needs an unrestricted credential (403 for a server-scoped key).
   */
  async revoke(principal: Principal, id: string): Promise<ApiKeyView> {
    requireUnrestricted(principal);
    const row = await this.#repo.findById(id);
    if (!row || (row.userId !== principal.userId && !isAdmin(principal))) throw notFound('API key');
    if (row.revokedAt) throw new AppError('conflict', 'API key is already revoked');
    const revoked = (await this.#repo.revoke(id)) ?? row;
    this.#cache.delete(row.hash);
    this.#generation++;
    this.#onRevoke?.();
    return toView(revoked);
  }

  /** Resolves a presented key to a principal, or says why it is refused. */
  async authenticate(
    token: string,
  ): Promise<{ principal: Principal } | { rejected: KeyRejection; apiKeyId?: string }> {
    if (token.length < 32 || token.length > 512) return { rejected: 'malformed' };
    const hash = hashKey(token);
    const now = Date.now();
    let cached = this.#cache.get(hash);
    if (!cached || now - cached.at > CACHE_TTL_MS) {
      const generation = this.#generation;
      cached = { at: now, row: await this.#repo.findByHash(hash) };
      // A revocation that landed while this lookup ran may not be in the row it read: use
      // the row for this request (it started first) but do not keep it.
      if (generation === this.#generation) this.#cache.set(hash, cached);
      if (this.#cache.size > 10_000) this.#cache.delete(this.#cache.keys().next().value!);
    }
    const found = cached.row;
    // Constant-time compare of the hash guards against a cache keyed by a colliding string.
    if (!found || !timingSafeEqual(Buffer.from(found.key.hash), Buffer.from(hash)))
      return { rejected: 'unknown' };
    const { key, user } = found;
    if (key.revokedAt) return { rejected: 'revoked', apiKeyId: key.id };
    if (key.expiresAt && key.expiresAt.getTime() <= now) return { rejected: 'expired', apiKeyId: key.id };
    this.#touch(key.id, now);
    return {
      principal: {
        userId: user.id,
        displayName: user.displayName,
        role: user.role,
        groups: user.groups,
        via: 'api_key',
        apiKeyId: key.id,
        serverScope: key.servers ?? undefined,
      },
    };
  }

  #touch(id: string, now: number) {
    if (now - (this.#touched.get(id) ?? 0) < TOUCH_EVERY_MS) return;
    this.#touched.set(id, now);
    this.#repo
      .touch(id, new Date(now))
      .catch((err: unknown) => this.#logger.warn({ err }, 'could not record key use'));
  }

  /**
   * Makes sure the bootstrap admin exists and owns a key named "bootstrap". With a token
   * from configuration the key is (re)installed with that value; without one a key is
   * generated only when the admin has none yet, and returned so the caller prints it once.
   */
  async ensureBootstrapAdmin(token: string | undefined): Promise<{ generatedKey?: string; userId: string }> {
    const admin = await this.#users.upsertBySubject({
      subject: 'local|admin',
      displayName: 'Administrator',
      role: 'admin',
    });
    const existing = (await this.#repo.list(admin.id)).find((k) => k.name === 'bootstrap' && !k.revokedAt);
    if (token) {
      if (!existing || existing.hash !== hashKey(token)) {
        await this.#repo.replaceNamed({
          userId: admin.id,
          name: 'bootstrap',
          prefix: token.slice(0, 12),
          hash: hashKey(token),
          servers: null,
        });
      }
      return { userId: admin.id };
    }
    if (existing) return { userId: admin.id };
    const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    await this.#repo.replaceNamed({
      userId: admin.id,
      name: 'bootstrap',
      prefix: key.slice(0, 12),
      hash: hashKey(key),
      servers: null,
    });
    return { generatedKey: key, userId: admin.id };
  }
}
