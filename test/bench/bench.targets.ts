// The processes the benchmark measures, each a child process of its own so that its CPU and
// memory are its own: the gateway (server/src/main.ts, configured through its environment
// and REST API like a deployment), and the peers `mcp-proxy` and `supergateway`, plain
// stdio→Streamable HTTP bridges from npm, in front of the same server-everything.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from '../support/config.ts';
import { createTestDatabase, type Engine } from '../support/database.ts';
import { EVERYTHING_BIN, freePort, NO_RATE_LIMITS, registerServer } from '../support/mcp.ts';
import { ROOT } from '../support/process.ts';
import { ADMIN_TOKEN, api } from '../support/server.ts';

const require = createRequire(import.meta.url);

function binOf(pkg: string): string {
  const manifest = require.resolve(`${pkg}/package.json`);
  const { bin } = require(manifest) as { bin: string | Record<string, string> };
  const rel = typeof bin === 'string' ? bin : Object.values(bin)[0]!;
  return path.join(path.dirname(manifest), rel);
}

/** A process the benchmark started, with its output in a log file. */
export interface Target {
  readonly label: string;
  /** Base URL of its MCP endpoint (for the gateway: its origin, servers live under /mcp). */
  readonly url: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resident set size of the process now, bytes (Linux /proc). */
  rss(): number;
  /** CPU time (user + system) the process itself has used, ms (Linux /proc; not its children). */
  cpuMs(): number;
  /** SIGTERM (so a --cpu-prof profile gets written), then SIGKILL of the whole process group. */
  stop(): Promise<void>;
}

/** CPU ms (utime + stime) of process `pid`, from /proc/<pid>/stat. */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 a second on Linux).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!kb) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb[1]) * 1024;
}

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, ms: number) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const listening = (port: number) =>
  new Promise<true | undefined>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => (s.destroy(), resolve(undefined)));
  });

/**
 * Spawns `args` under this Node.js in a process group of its own (its stdio children die
 * with it), stdout and stderr to a log file: reading a pipe would put the target's logging
 * cost on the benchmark process.
 */
function spawnLogged(
  label: string,
  nodeArgs: string[],
  env: Record<string, string>,
): { proc: ChildProcess; logFile: string; exited: Promise<void> } {
  const logFile = path.join(tempDir('gw-bench-log-'), `${label.replace(/\W+/g, '-')}.log`);
  const fd = openSync(logFile, 'w');
  const proc = spawn(process.execPath, nodeArgs, {
    cwd: ROOT,
    // eslint-disable-next-line no-restricted-properties -- a child needs PATH and HOME, nothing else of ours
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return { proc, logFile, exited };
}

function targetOf(
  label: string,
  url: string,
  spawned: ReturnType<typeof spawnLogged>,
  after: () => Promise<void> = async () => {},
): Target {
  const { proc, logFile, exited } = spawned;
  const pid = proc.pid!;
  return {
    label,
    url,
    pid,
    logFile,
    rss: () => rssOf(pid),
    cpuMs: () => cpuMsOf(pid),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      }
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // The group is already gone.
      }
      await after();
    },
  };
}

/** A gateway process, its admin REST client and a key for the servers registered on it. */
export interface GatewayTarget extends Target {
  readonly engine: Engine;
  readonly admin: ReturnType<typeof api>;
  /** Creates an API key (through the REST API) limited to `servers`. */
  createKey(servers: string[]): Promise<string>;
}

/**
 * `server/src/main.ts` as its own process: temp DATA_DIR, admin token, rate limits off,
 * loopback upstreams allowed, default logging (info, every request) to a file, auth and
 * audit on as always. On PostgreSQL it gets a fresh database, dropped at stop.
 */
export async function startGateway(options: {
  engine: Engine;
  label: string;
  /** Server definitions for POST /api/servers (each granted to everyone). */
  servers: { slug: string }[];
  /** Node.js flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
}): Promise<GatewayTarget> {
  const db = options.engine === 'postgres' ? await createTestDatabase('postgres') : undefined;
  const spawned = spawnLogged(
    options.label,
    [...(options.nodeArgs ?? []), path.join(ROOT, 'server/src/main.ts')],
    {
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      PORT: '0',
      DATA_DIR: tempDir('gw-bench-data-'),
      ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
      UPSTREAM_ALLOW_LOOPBACK: 'true',
      ...NO_RATE_LIMITS,
      ...(db?.url ? { DATABASE_URL: db.url } : {}),
    },
  );
  const pending = targetOf(options.label, '', spawned, async () => db?.drop());
  let url: string;
  try {
    url = await until(
      () => {
        if (spawned.proc.exitCode !== null) {
          throw new Error(`${options.label} exited: ${readFileSync(spawned.logFile, 'utf8')}`);
        }
        return /"url":"(http:\/\/[^"]+)"[^\n]*gateway listening/.exec(
          readFileSync(spawned.logFile, 'utf8'),
        )?.[1];
      },
      `${options.label} to listen`,
      90_000,
    );
    const admin = api(url, ADMIN_TOKEN);
    for (const s of options.servers) await registerServer(admin, s);
    return {
      ...pending,
      url,
      engine: options.engine,
      admin,
      async createKey(servers) {
        // The REST API creates keys for the caller only: this one belongs to the bootstrap
        // admin, narrowed to the benchmark's servers like a scoped integration key.
        const res = await admin.post('/api/keys', { name: `bench-${servers.join('-')}`, servers });
        if (res.status !== 201) throw new Error(`POST /api/keys: ${res.status} ${JSON.stringify(res.body)}`);
        return (res.body as { key: string }).key;
      },
    };
  } catch (err) {
    await pending.stop();
    throw err;
  }
}

async function startPeer(label: string, argsFor: (port: number) => string[]): Promise<Target> {
  const port = await freePort();
  const spawned = spawnLogged(label, argsFor(port), {});
  const target = targetOf(label, `http://127.0.0.1:${port}/mcp`, spawned);
  try {
    await until(
      () => {
        if (spawned.proc.exitCode !== null) {
          throw new Error(`${label} exited: ${readFileSync(spawned.logFile, 'utf8')}`);
        }
        return listening(port);
      },
      `${label} to listen`,
      30_000,
    );
    return target;
  } catch (err) {
    await target.stop();
    throw err;
  }
}

/** `mcp-proxy` with its defaults: one server-everything child per session, endpoint /mcp. */
export function startMcpProxy(): Promise<Target> {
  return startPeer('mcp-proxy', (port) => [
    binOf('mcp-proxy'),
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--server',
    'stream',
    '--',
    process.execPath,
    EVERYTHING_BIN,
    'stdio',
  ]);
}

/** `supergateway` stdio→Streamable HTTP, stateful (one child per session, as the others), quiet. */
export function startSupergateway(): Promise<Target> {
  return startPeer('supergateway', (port) => [
    binOf('supergateway'),
    '--stdio',
    `${JSON.stringify(process.execPath)} ${JSON.stringify(EVERYTHING_BIN)} stdio`,
    '--outputTransport',
    'streamableHttp',
    '--stateful',
    '--port',
    String(port),
    '--logLevel',
    'none',
  ]);
}
