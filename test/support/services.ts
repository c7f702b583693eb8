// Availability of the real services tests use. A test that needs one that is missing
// skips with a loud message on a developer's machine, and fails when CI is set, so CI
// proves everything.
import net from 'node:net';
import { existsSync } from 'node:fs';

/* eslint-disable no-restricted-properties -- tests read their own environment */
export const IN_CI = Boolean(process.env['CI']);

/** Base URL of a PostgreSQL server tests may create databases on. */
export const POSTGRES_ADMIN_URL =
  process.env['TEST_DATABASE_URL'] ??
  process.env['DATABASE_URL'] ??
  'postgres://postgres@127.0.0.1:5432/postgres';

export const REDIS_URL =
  process.env['TEST_REDIS_URL'] ?? process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
/* eslint-enable no-restricted-properties */

function tcpReachable(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: u.hostname, port: Number(u.port || defaultPort) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const cache = new Map<string, Promise<boolean>>();

async function available(name: string, probe: () => Promise<boolean>): Promise<boolean> {
  if (!cache.has(name)) cache.set(name, probe());
  const ok = await cache.get(name)!;
  if (!ok) {
    const message = `${name} is not available`;
    if (IN_CI) throw new Error(`${message}, and CI is set: the tests that need it must run`);
    console.warn(`\n!!! SKIPPING tests that need ${name}: ${message}. Start it to run them. !!!\n`);
  }
  return ok;
}

export const hasPostgres = () => available('PostgreSQL', () => tcpReachable(POSTGRES_ADMIN_URL, 5432));
export const hasRedis = () => available('Redis', () => tcpReachable(REDIS_URL, 6379));
export const hasChromium = () => available('Chromium', async () => existsSync(CHROMIUM_PATH));
