import { Redis } from 'ioredis';
import type { Logger } from '../logging/logger.ts';

/** Redis could not be reached; the message is safe to print (no credentials). */
export class RedisUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedisUnavailableError';
  }
}

export function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}${u.pathname && u.pathname !== '/' ? u.pathname : ''}`;
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * Opens an ioredis connection configured for BullMQ (`maxRetriesPerRequest: null`, which
 * blocking commands need) and checks it answers within `timeoutMs`. After start-up the
 * client reconnects on its own; readiness reports outages.
 */
export async function connectRedis(
  url: string,
  logger: Logger,
  options: { timeoutMs?: number; name?: string } = {},
): Promise<Redis> {
  const where = describeRedisUrl(url);
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    lazyConnect: true,
    connectionName: options.name ?? 'mcp-gateway',
    // Back off up to 2 s between reconnects; never give up once running.
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
  let lastError = '';
  redis.on('error', (err: Error) => {
    // ioredis emits an error per failed reconnect; log each distinct one once.
    if (err.message !== lastError) {
      lastError = err.message;
      logger.warn({ redis: where, err: err.message }, 'redis connection error');
    }
  });
  redis.on('ready', () => {
    lastError = '';
  });
  const timeoutMs = options.timeoutMs ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect().then(() => redis.ping()),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    redis.disconnect();
    throw new RedisUnavailableError(
      `cannot connect to Redis at ${where}: ${(err as Error).message || lastError}`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
  }
  return redis;
}

/** PING with a deadline, for readiness checks. */
export async function pingRedis(redis: Redis, timeoutMs = 2_000): Promise<void> {
  if (redis.status !== 'ready') throw new Error(`redis connection is ${redis.status}`);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
