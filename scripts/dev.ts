// `npm run dev`: the server under `node --watch` and the Vite dev server with hot reload
// (http://localhost:5173, proxying the API to the server on port 3000).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const children = [
  spawn(process.execPath, ['--watch', 'server/src/main.ts'], {
    cwd: root,
    stdio: 'inherit',
    // The app on Vite's port opens the chat socket (and may call /mcp) from that origin.
    env: {
      ...process.env,
      GATEWAY_ALLOWED_ORIGINS: process.env['GATEWAY_ALLOWED_ORIGINS'] ?? 'http://localhost:5173',
    },
  }),
  spawn(process.execPath, [path.join(root, 'node_modules/vite/bin/vite.js')], {
    cwd: path.join(root, 'client'),
    stdio: 'inherit',
  }),
];
const stop = () => {
  for (const child of children) child.kill('SIGTERM');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
for (const child of children) child.on('exit', stop);
