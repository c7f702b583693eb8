import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A lease on a name, so one refresh happens per token: an authorization server that
 * rotates refresh tokens treats a second use of the same refresh token as theft and
 * revokes the whole grant (oidc-provider does), so two processes must never refresh the
 * same token at once. `run` runs `fn` only when the lease was free, and frees it after;
 * the lease also ends by itself after `ttlMs` (a holder that died frees it).
 */
export interface RefreshLock {
  run<T>(
    name: string,
    ttlMs: number,
    fn: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }>;
}

/** Within one process (the embedded default: the server runs every job itself). */
export class InProcessLock implements RefreshLock {
  readonly #held = new Map<string, number>();

  async run<T>(
    name: string,
    ttlMs: number,
    fn: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    const now = Date.now();
    const until = this.#held.get(name);
    if (until !== undefined && until > now) return { ran: false };
    const mine = now + ttlMs;
    this.#held.set(name, mine);
    try {
      return { ran: true, value: await fn() };
    } finally {
      if (this.#held.get(name) === mine) this.#held.delete(name);
    }
  }
}

/** Deletes the key only if it still holds our token (a lease that expired and was re-taken stays). */
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** Across processes (server replicas and workers), with Redis `SET key token NX PX ttl`. */
export class RedisLock implements RefreshLock {
  readonly #redis: Redis;
  readonly #prefix: string;

  /** @param prefix REDIS_PREFIX; keys are `{prefix}:lock:{name}`. */
  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  async run<T>(
    name: string,
    ttlMs: number,
    fn: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    const key = `${this.#prefix}:lock:${name}`;
    const token = randomBytes(16).toString('hex');
    const taken = await this.#redis.set(key, token, 'PX', ttlMs, 'NX');
    if (taken !== 'OK') return { ran: false };
    try {
      return { ran: true, value: await fn() };
    } finally {
      await this.#redis.eval(RELEASE, 1, key, token).catch(() => undefined);
    }
  }
}
