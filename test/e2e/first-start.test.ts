// The README's quick start, exactly as a newcomer runs it: a fresh copy of the project with
// no build output, `npm ci`, then `npm start` with nothing set in the environment but PATH,
// HOME and a free PORT. The test runner's own environment (NODE_ENV=test, CI, database and
// Redis URLs) once hid a first start that came up in production mode and stopped: it must
// never reach the started process.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/mcp.ts';
import { ROOT } from '../support/process.ts';

const clone = mkdtempSync(path.join(tmpdir(), 'gw-first-start-'));
const running = new Set<number>();

afterAll(() => {
  for (const pid of running) killGroup(pid, 'SIGKILL');
  rmSync(clone, { recursive: true, force: true });
});

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** The files a fresh clone of this working tree has: tracked and new ones, never ignored ones. */
function copyWorkingTree(to: string): void {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const from = path.join(ROOT, file);
    // A file deleted in the working tree but still in the index is not part of it.
    if (!existsSync(from)) continue;
    mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
    copyFileSync(from, path.join(to, file));
  }
}

/** The environment of a newcomer's shell: nothing of the test runner's. */
function newcomerEnv(port: number): Record<string, string> {
  // eslint-disable-next-line no-restricted-properties -- only the shell's PATH and HOME pass on
  return { PATH: process.env['PATH']!, HOME: process.env['HOME'] ?? clone, PORT: String(port) };
}

interface Started {
  output: () => string;
  exited: Promise<number | string>;
  /** Ctrl-C in the terminal: SIGINT to the whole group; resolves once npm has exited. */
  stop: () => Promise<void>;
}

/** `npm start` in its own process group, so stopping it reaches the server under npm. */
function npmStart(port: number): Started {
  const proc = spawn('npm', ['start'], {
    cwd: clone,
    env: newcomerEnv(port),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  running.add(proc.pid!);
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | string>((resolve) =>
    proc.on('exit', (code, signal) => {
      running.delete(proc.pid!);
      resolve(code ?? signal ?? -1);
    }),
  );
  return {
    output: () => out,
    exited,
    stop: async () => {
      killGroup(proc.pid!, 'SIGINT');
      await exited;
    },
  };
}

/** Polls /readyz until it answers 200, failing early (with the output) if the process exits. */
async function waitReady(started: Started, url: string, timeoutMs: number): Promise<void> {
  let exitedWith: number | string | undefined;
  void started.exited.then((c) => (exitedWith = c));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exitedWith !== undefined) {
      throw new Error(`npm start exited (${exitedWith}) before serving; output:\n${started.output()}`);
    }
    const status = await fetch(`${url}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`npm start did not serve /readyz within ${timeoutMs} ms; output:\n${started.output()}`);
}

describe('the quick start on a fresh clone', () => {
  it('npm ci && npm start serves on the embedded default at once, prints an admin key, and keeps the data', async () => {
    copyWorkingTree(clone);
    expect(existsSync(path.join(clone, 'client', 'dist'))).toBe(false);

    const ci = spawnSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: clone,
      env: newcomerEnv(0),
      encoding: 'utf8',
      timeout: 240_000,
    });
    expect(ci.status, `npm ci failed:\n${ci.stdout}\n${ci.stderr}`).toBe(0);

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const first = npmStart(port);
    await waitReady(first, url, 180_000);
    expect(first.output()).toContain('Building the web client');
    // The key is printed right after the server starts serving: /readyz can answer first.
    await expect
      .poll(() => /^\s+mgw_[A-Za-z0-9_-]{20,}\s*$/m.test(first.output()), { timeout: 15_000 })
      .toBe(true);
    const key = first.output().match(/^\s+(mgw_[A-Za-z0-9_-]{20,})\s*$/m)?.[1];
    expect(key, `no admin key printed; output:\n${first.output()}`).toBeDefined();
    // The web UI is served from the build the first start made.
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
    await first.stop();
    // npm reports the interrupt in its own exit code; the server's own word is what counts.
    expect(first.output()).toContain('"msg":"stopped"');

    const second = npmStart(port);
    await waitReady(second, url, 90_000);
    // Built once, created once: the second start reuses both.
    expect(second.output()).not.toContain('Building the web client');
    expect(second.output()).not.toMatch(/admin API key was generated/);
    const me = await fetch(`${url}/api/me`, { headers: { authorization: `Bearer ${key}` } });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ role: 'admin' });
    await second.stop();
    expect(second.output()).toContain('"msg":"stopped"');
  }, 540_000);
});
