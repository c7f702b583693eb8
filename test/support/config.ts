import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, type Config, type Env } from '../../server/src/platform/config/config.ts';
import { createLogger, type Logger } from '../../server/src/platform/logging/logger.ts';

/** A fresh temporary directory. */
export function tempDir(prefix = 'gw-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Configuration for an in-process test server: random port, quiet logs, own data dir. */
export function testConfig(env: Env = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    LOG_LEVEL: 'silent',
    DATA_DIR: tempDir(),
    ...env,
  });
}

/** A logger for tests; set TEST_LOG_LEVEL=debug to see what the code under test logs. */
export function testLogger(): Logger {
  // eslint-disable-next-line no-restricted-properties -- tests read their own environment
  return createLogger({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent', name: 'test' });
}
