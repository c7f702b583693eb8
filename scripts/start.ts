// `npm start`: builds the web client when its sources changed since the last build, then
// runs the server in this process. Production images build the client at image build time
// and run `node server/src/main.ts` directly.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const client = path.join(root, 'client');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

function builtAt(): number {
  try {
    return statSync(path.join(client, 'dist', 'index.html')).mtimeMs;
  } catch {
    return 0;
  }
}

const sources = Math.max(
  newestMtime(path.join(client, 'src')),
  statSync(path.join(client, 'index.html')).mtimeMs,
  newestMtime(path.join(root, 'shared', 'src')),
);
if (sources > builtAt()) {
  process.stdout.write('Building the web client…\n');
  const { build } = await import('vite');
  await build({ root: client, logLevel: 'warn', configFile: path.join(client, 'vite.config.ts') });
}

await import('../server/src/main.ts');
