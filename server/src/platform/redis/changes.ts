import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logging/logger.ts';

/**
 * What changed: the server catalog, the access rules, OAuth grants (one was revoked), users
 * (a role, groups, or disabled), or API keys (one was revoked).
 */
export type ChangeTopic = 'registry' | 'access' | 'oauth-grants' | 'users' | 'keys';

/**
 * Tells the other processes of a deployment (server replicas, workers) that something they
 * keep in memory changed, so they reload it now instead of at their next periodic reload.
 * A hint, not a source of truth: a lost message only means the periodic reload catches up.
 */
export interface ChangeFeed {
  publish(topic: ChangeTopic): void;
  subscribe(topic: ChangeTopic, onChange: () => void): void;
  close(): Promise<void>;
}

/** One process, nothing to tell: its own changes are applied where they are made. */
export class LocalChangeFeed implements ChangeFeed {
  publish(): void {}
  subscribe(): void {}
  async close(): Promise<void> {}
}

/** Redis pub/sub on `{REDIS_PREFIX}:changes`; a process ignores its own messages. */
export class RedisChangeFeed implements ChangeFeed {
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #channel: string;
  readonly #origin = randomUUID();
  readonly #handlers = new Map<ChangeTopic, Array<() => void>>();
  readonly #logger: Logger;
  readonly #ready: Promise<unknown>;

  constructor(redis: Redis, prefix: string, logger: Logger) {
    this.#pub = redis;
    // A subscribed connection can do nothing else: it gets one of its own.
    this.#sub = redis.duplicate();
    this.#channel = `${prefix}:changes`;
    this.#logger = logger.child({ feature: 'changes' });
    this.#sub.on('message', (_channel: string, raw: string) => this.#receive(raw));
    this.#ready = this.#sub.subscribe(this.#channel).catch((err: unknown) => {
      this.#logger.warn({ err }, 'could not subscribe to change messages; replicas catch up on their timers');
    });
  }

  /** Resolves once the subscription is in place (tests wait for it). */
  ready(): Promise<unknown> {
    return this.#ready;
  }

  publish(topic: ChangeTopic): void {
    this.#pub
      .publish(this.#channel, JSON.stringify({ topic, origin: this.#origin }))
      .catch((err: unknown) => {
        this.#logger.warn({ err, topic }, 'could not publish a change message');
      });
  }

  subscribe(topic: ChangeTopic, onChange: () => void): void {
    const list = this.#handlers.get(topic) ?? [];
    list.push(onChange);
    this.#handlers.set(topic, list);
  }

  #receive(raw: string) {
    let message: { topic?: ChangeTopic; origin?: string };
    try {
      message = JSON.parse(raw) as typeof message;
    } catch {
      return;
    }
    if (message.origin === this.#origin || !message.topic) return;
    for (const handler of this.#handlers.get(message.topic) ?? []) {
      try {
        handler();
      } catch (err) {
        this.#logger.warn({ err, topic: message.topic }, 'a change handler failed');
      }
    }
  }

  async close(): Promise<void> {
    await this.#sub.quit().catch(() => this.#sub.disconnect());
  }
}
