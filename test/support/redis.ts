import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { REDIS_URL } from './services.ts';

/** A Redis key prefix of its own for one test file; `clean()` deletes every key under it. */
export function testRedisPrefix(): { prefix: string; url: string; clean(): Promise<void> } {
  const prefix = `gwtest-${randomBytes(5).toString('hex')}`;
  return {
    prefix,
    url: REDIS_URL,
    async clean() {
      const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await redis.connect();
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
          cursor = next;
          if (keys.length) await redis.del(...keys);
        } while (cursor !== '0');
      } finally {
        redis.disconnect();
      }
    },
  };
}
