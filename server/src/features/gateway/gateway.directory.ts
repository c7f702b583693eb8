import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/logging/logger.ts';

/** Where a session lives, as the directory records it. */
export interface DirectoryEntry {
  /** The owner replica's internal address (REPLICA_URL). */
  readonly owner: string;
  /** The owner process's instance id: a restarted replica at the same address is another instance. */
  readonly instance: string;
  /** The user who opened the session (a caller who is someone else is not forwarded). */
  readonly userId: string;
  /** The server slug of `/mcp/{slug}`; null for the aggregate endpoint `/mcp`. */
  readonly slug: string | null;
}

/** A looked-up entry and its stored text (for compare-and-delete). */
export interface FoundEntry {
  readonly entry: DirectoryEntry;
  readonly raw: string;
}

// Deletes a key only while it still holds the value the caller saw, so a replica removing a
// stale entry never removes one that was written again meanwhile.
const DELETE_IF_SAME = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

/**
 * The session directory of a deployment with several replicas (Redis): which replica holds
 * each MCP session. A session's streams and stdio processes live in the replica that created
 * it; any other replica that receives a request for it reads the owner here and forwards the
 * request there.
 *
 * Entries expire (`ttlMs`) unless the owner refreshes them: a heartbeat re-writes every entry
 * this process holds every `heartbeatMs`, and at once after Redis comes back (a restarted
 * Redis without persistence has forgotten them). A replica that dies stops refreshing, so its
 * entries vanish and clients get 404 and re-initialize elsewhere.
 */
export class SessionDirectory {
  /** This process's identity in the entries it writes. */
  readonly instance = randomUUID();
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #ttlMs: number;
  readonly #heartbeatMs: number;
  readonly #timeoutMs: number;
  /** Sessions this process holds, with the text of their entry. */
  readonly #held = new Map<string, string>();
  readonly #pending = new Set<Promise<unknown>>();
  #owner: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #onReady = () => this.#refreshAll('redis reconnected');

  constructor(options: {
    redis: Redis;
    /** REDIS_PREFIX; keys are `{prefix}:mcp-session:{id}`. */
    prefix: string;
    logger: Logger;
    ttlMs?: number;
    heartbeatMs?: number;
    /** Longest wait for one Redis command (ioredis queues commands while Redis is away). */
    timeoutMs?: number;
  }) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#logger = options.logger.child({ feature: 'gateway', part: 'directory' });
    this.#ttlMs = options.ttlMs ?? 30_000;
    this.#heartbeatMs = options.heartbeatMs ?? Math.floor(this.#ttlMs / 3);
    this.#timeoutMs = options.timeoutMs ?? 2_000;
  }

  /** This replica's internal address, once it listens; entries are written from then on. */
  get owner(): string | undefined {
    return this.#owner;
  }

  /** Starts the heartbeat; `owner` is the address other replicas reach this one at. */
  start(owner: string): void {
    this.#owner = owner.replace(/\/+$/, '');
    this.#timer ??= setInterval(() => this.#refreshAll(), this.#heartbeatMs);
    this.#timer.unref();
    this.#redis.on('ready', this.#onReady);
  }

  #key(id: string) {
    return `${this.#prefix}:mcp-session:${id}`;
  }

  /** Whether this process registered the session and holds it still. */
  holds(id: string): boolean {
    return this.#held.has(id);
  }

  /** Records that this process holds session `id` (best effort: a failure is logged, the heartbeat retries). */
  register(id: string, session: { userId: string; slug: string | undefined }): void {
    if (!this.#owner) return;
    const entry: DirectoryEntry = {
      owner: this.#owner,
      instance: this.instance,
      userId: session.userId,
      slug: session.slug ?? null,
    };
    const raw = JSON.stringify(entry);
    this.#held.set(id, raw);
    this.#track(
      this.#bounded(this.#redis.set(this.#key(id), raw, 'PX', this.#ttlMs)).catch((err: unknown) =>
        this.#logger.warn({ err, sessionId: id }, 'could not register an MCP session in the directory'),
      ),
    );
  }

  /** Removes session `id`, which this process no longer holds. */
  remove(id: string): void {
    const raw = this.#held.get(id);
    if (raw === undefined) return;
    this.#held.delete(id);
    this.#track(this.forget(id, raw));
  }

  /** The entry of session `id`, or undefined when none. Rejects when Redis does not answer in time. */
  async lookup(id: string): Promise<FoundEntry | undefined> {
    const raw = await this.#bounded(this.#redis.get(this.#key(id)));
    if (!raw) return undefined;
    try {
      const entry = JSON.parse(raw) as DirectoryEntry;
      if (typeof entry.owner !== 'string' || typeof entry.instance !== 'string') return undefined;
      return { entry, raw };
    } catch {
      return undefined;
    }
  }

  /** Deletes the entry of `id` if it is still `raw` (a dead or restarted owner's). */
  async forget(id: string, raw: string): Promise<void> {
    await this.#bounded(this.#redis.eval(DELETE_IF_SAME, 1, this.#key(id), raw)).catch((err: unknown) =>
      this.#logger.warn({ err, sessionId: id }, 'could not remove an MCP session from the directory'),
    );
  }

  #refreshAll(reason?: string) {
    if (!this.#held.size || this.#redis.status !== 'ready') return;
    const batch = this.#redis.pipeline();
    for (const [id, raw] of this.#held) batch.set(this.#key(id), raw, 'PX', this.#ttlMs);
    if (reason) this.#logger.info({ sessions: this.#held.size, reason }, 're-registering MCP sessions');
    this.#track(
      this.#bounded(batch.exec()).catch((err: unknown) =>
        this.#logger.warn({ err }, 'could not refresh the MCP session directory'),
      ),
    );
  }

  #bounded<T>(command: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      command,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`redis did not answer within ${this.#timeoutMs} ms`)),
          this.#timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  }

  #track(p: Promise<unknown>) {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  /** Stops the heartbeat and removes the entries still held (after the gateway closed its sessions). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#redis.off('ready', this.#onReady);
    for (const id of [...this.#held.keys()]) this.remove(id);
    await Promise.allSettled([...this.#pending]);
  }
}
