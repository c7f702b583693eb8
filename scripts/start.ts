// `npm start`: builds the web client when its sources changed since the last build, then
// runs the server in this process. Production images build the client at image build time
// and run `node server/src/main.ts` directly.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
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
  statSync(path.join(client, 'vite.config.ts')).mtimeMs,
  newestMtime(path.join(root, 'shared', 'src')),
);
if (sources > builtAt()) {
  process.stdout.write('Building the web client…\n');
  // In a child process, never in this one: Vite's build sets process.env.NODE_ENV to
  // "production" in the process that runs it, and the server started below reads its
  // configuration from that same environment. A first start on a fresh clone then came up
  // in production mode and stopped for want of ENCRYPTION_KEY, while every later start (with
  // the client already built) worked. The child's environment changes die with it.
  const viteDir = path.dirname(createRequire(path.join(client, 'package.json')).resolve('vite/package.json'));
  const vite = path.join(viteDir, 'bin', 'vite.js');
  const build = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], {
    cwd: client,
    stdio: 'inherit',
  });
  if (build.status !== 0) {
    process.stderr.write(
      `start: building the web client failed (${build.error?.message ?? `exit ${build.status ?? build.signal}`}); fix the error above and run npm start again\n`,
    );
    process.exit(1);
  }
}

await import('../server/src/main.ts');
