// vitest globalSetup for the e2e tier: builds the web client once per run, so the server
// under test serves the real bundle.
import path from 'node:path';
import { build } from 'vite';
import { ROOT } from './process.ts';

export default async function setup(): Promise<void> {
  const client = path.join(ROOT, 'client');
  await build({ root: client, logLevel: 'error', configFile: path.join(client, 'vite.config.ts') });
}
