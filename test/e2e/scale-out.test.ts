// Two server replicas and a workers process on PostgreSQL and Redis, behind Caddy balancing
// round-robin with no stickiness: every request after `initialize` reaches either replica,
// and the one without the session forwards it to the owner. Then one replica is killed
// (SIGKILL) under load: clients whose session it held get 404 and re-initialize on the
// other; nobody else notices; its stdio processes end with it; the audit trail verifies.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { tempDir } from '../support/config.ts';
import { createTestDatabase } from '../support/database.ts';
import {
  connectMcp,
  everythingStdio,
  freePort,
  NO_RATE_LIMITS,
  rawMcp,
  registerServer,
  initializeRequest,
  text,
  type McpConnection,
} from '../support/mcp.ts';
import { spawnEntry, spawnServer, type SpawnedProcess } from '../support/process.ts';
import { testRedisPrefix } from '../support/redis.ts';
import { api, ADMIN_TOKEN } from '../support/server.ts';
import { hasPostgres, hasRedis, IN_CI } from '../support/services.ts';

const CADDY = spawnSync('sh', ['-c', 'command -v caddy'], { encoding: 'utf8' }).stdout.trim();
if (!CADDY) {
  const message = 'caddy is not installed: the scale-out test needs it (Debian: apt-get install caddy)';
  if (IN_CI) throw new Error(`${message}, and CI is set`);
  console.warn(`\n!!! SKIPPING the scale-out test: ${message} !!!\n`);
}
const READY = Boolean(CADDY) && (await hasPostgres()) && (await hasRedis());

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const SECRET = randomBytes(32).toString('base64url');

interface Replica extends SpawnedProcess {
  url: string;
}

/** Pids of the direct children of `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  const dir = `/proc/${pid}/task`;
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((tid) =>
    readFileSync(`${dir}/${tid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number),
  );
}

/** Whether process `pid` still runs (a zombie waiting for its new parent counts as ended). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** One request a client made, for the assertions at the end. */
interface Call {
  client: number;
  what: string;
  started: number;
  ended: number;
  sessionId: string | undefined;
  error?: string;
  status?: number;
}

describe.skipIf(!READY)('scale-out: two replicas behind a round-robin proxy', { timeout: 200_000 }, () => {
  let caddyUrl: string;
  let replicas: Replica[];
  let redisCli: Redis;
  let prefix: string;

  beforeAll(async () => {
    const db = await createTestDatabase('postgres');
    cleanups.push(() => db.drop());
    const redis = testRedisPrefix();
    prefix = redis.prefix;
    cleanups.push(() => redis.clean());
    redisCli = new Redis(redis.url);
    cleanups.push(async () => redisCli.disconnect());
    const common = {
      ...NO_RATE_LIMITS,
      LOG_LEVEL: 'info',
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
      INTERNAL_SECRET: SECRET,
      UPSTREAM_ALLOW_LOOPBACK: 'true',
      AUDIT_FLUSH_INTERVAL_MS: '20',
      GATEWAY_STDIO_POOL_SIZE: '0',
      WORKERS_METRICS_PORT: '0',
    };
    // The first replica migrates the database; the second starts beside the workers.
    const first = await spawnServer({ ...common, DATA_DIR: tempDir() });
    cleanups.push(async () => first.kill('SIGKILL'));
    const [second, workers] = await Promise.all([
      spawnServer({ ...common, DATA_DIR: tempDir() }),
      (async () => {
        const w = spawnEntry('workers/src/main.ts', { ...common, DATA_DIR: tempDir() });
        cleanups.push(async () => w.kill('SIGKILL'));
        await w.waitFor(/workers consuming jobs/, 60_000);
        return w;
      })(),
    ]);
    cleanups.push(async () => second.kill('SIGKILL'));
    expect(workers.proc.exitCode).toBeNull();
    replicas = [first, second];

    const port = await freePort();
    const home = tempDir();
    const caddyfile = path.join(home, 'Caddyfile');
    writeFileSync(
      caddyfile,
      `{
	admin off
	auto_https off
}
http://127.0.0.1:${port} {
	reverse_proxy ${replicas.map((r) => new URL(r.url).host).join(' ')} {
		lb_policy round_robin
		# A replica that refuses connections is skipped (requests retried on the other).
		lb_try_duration 5s
		fail_duration 30s
		# Liveness, with room: on a loaded 2-core machine a readiness probe (database and Redis
		# round trips with deadlines) can miss, and both replicas marked down is a 503 from
		# Caddy for every request. A dead replica still fails at once: its port refuses.
		health_uri /healthz
		health_interval 1s
		health_timeout 10s
		flush_interval -1
	}
}
`,
    );
    const caddy: ChildProcess = spawn(CADDY, ['run', '--config', caddyfile, '--adapter', 'caddyfile'], {
      // eslint-disable-next-line no-restricted-properties -- the machine's PATH, nothing else
      env: { PATH: process.env['PATH'], HOME: home, XDG_DATA_HOME: home, XDG_CONFIG_HOME: home },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let caddyLog = '';
    caddy.stderr!.on('data', (c: Buffer) => void (caddyLog += c.toString()));
    cleanups.push(async () => caddy.kill('SIGKILL'));
    caddyUrl = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ok = await fetch(`${caddyUrl}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline || caddy.exitCode !== null)
        throw new Error(`caddy did not start:\n${caddyLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await registerServer(api(caddyUrl, ADMIN_TOKEN), everythingStdio('every'));
  }, 120_000);

  it('without stickiness every request succeeds on whichever replica it reaches; a killed replica costs only its own sessions', async () => {
    const admin = api(caddyUrl, ADMIN_TOKEN);
    const owners = new Map<string, string>();
    const ownerOf = async (sessionId: string | undefined) => {
      if (!sessionId) return undefined;
      if (!owners.has(sessionId)) {
        const raw = await redisCli.get(`${prefix}:mcp-session:${sessionId}`);
        if (raw) owners.set(sessionId, (JSON.parse(raw) as { owner: string }).owner);
      }
      return owners.get(sessionId);
    };

    const calls: Call[] = [];
    const reinitialized: { client: number; from: string | undefined }[] = [];
    // What the clients' transports reported on their own (the GET streams above all).
    const streamErrors: string[] = [];
    const live = new Set<McpConnection>();
    let stop = false;
    // A client re-initializes after a failure, as the spec asks after a 404; an initialize
    // that fails is recorded and tried again.
    const connect = async (n: number): Promise<McpConnection> => {
      for (;;) {
        const call: Call = {
          client: n,
          what: 'initialize',
          started: Date.now(),
          ended: 0,
          sessionId: undefined,
        };
        try {
          const c = await connectMcp(`${caddyUrl}/mcp/every`, ADMIN_TOKEN);
          await ownerOf(c.transport.sessionId);
          live.add(c);
          return c;
        } catch (err) {
          call.ended = Date.now();
          call.error = (err as Error).message;
          if (err instanceof StreamableHTTPError) call.status = err.code;
          calls.push(call);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    // A response in flight through the killed replica is lost with it (there is no event
    // store to resume from): the client's own timeout ends the wait.
    const TIMEOUT = { timeout: 5_000 };

    const client = async (n: number) => {
      let c: McpConnection = await connect(n);
      let round = 0;
      while (!stop) {
        round++;
        const steps: [string, () => Promise<void>][] = [
          [
            'tools/list',
            async () => {
              const { tools } = await c.client.listTools(undefined, TIMEOUT);
              expect(tools.map((t) => t.name)).toContain('trigger-sampling-request');
            },
          ],
          [
            'progress',
            async () => {
              let progress = 0;
              const result = await c.client.callTool(
                { name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 2 } },
                undefined,
                { ...TIMEOUT, onprogress: () => void progress++ },
              );
              expect(text(result)).toMatch(/^Long running operation completed/);
              expect(progress).toBe(2);
            },
          ],
          [
            'sampling',
            async () => {
              const result = await c.client.callTool(
                {
                  name: 'trigger-sampling-request',
                  arguments: { prompt: `round ${round} of client ${n}`, maxTokens: 10 },
                },
                undefined,
                TIMEOUT,
              );
              expect(JSON.stringify(result.content)).toContain('sampled-by-test-client');
            },
          ],
          [
            'echo',
            async () => {
              const result = await c.client.callTool(
                { name: 'echo', arguments: { message: `c${n}r${round}` } },
                undefined,
                TIMEOUT,
              );
              expect(text(result)).toContain(`c${n}r${round}`);
            },
          ],
        ];
        for (const [what, step] of steps) {
          if (stop) break;
          const call: Call = {
            client: n,
            what,
            started: Date.now(),
            ended: 0,
            sessionId: c.transport.sessionId,
          };
          try {
            await step();
            call.ended = Date.now();
          } catch (err) {
            call.ended = Date.now();
            call.error = (err as Error).message;
            if (err instanceof StreamableHTTPError) call.status = err.code;
            calls.push(call);
            // Any failure: start over on a new session (after a 404 that is what the spec asks).
            reinitialized.push({ client: n, from: await ownerOf(call.sessionId) });
            streamErrors.push(...c.events.errors.map((e) => e.message));
            live.delete(c);
            await c.client.close().catch(() => {});
            c = await connect(n);
            break;
          }
          calls.push(call);
        }
      }
      streamErrors.push(...c.events.errors.map((e) => e.message));
      await c.close();
    };

    const CLIENTS = 6;
    const load = Array.from({ length: CLIENTS }, (_, i) => client(i));
    await new Promise((r) => setTimeout(r, 7_000));

    // Both replicas held sessions, and requests crossed between them.
    const before = [...owners.values()];
    expect(new Set(before).size).toBe(2);
    const failedBefore = calls.filter((c) => c.error);
    expect(failedBefore, JSON.stringify(failedBefore.slice(0, 5))).toEqual([]);
    expect(calls.filter((c) => c.what === 'sampling').length).toBeGreaterThan(CLIENTS);

    expect([...streamErrors, ...[...live].flatMap((c) => c.events.errors.map((e) => e.message))]).toEqual([]);

    // Kill the replica that holds the sessions of at least one client.
    const victim = replicas[1]!;
    const victimUrl = victim.url;
    const children = childrenOf(victim.proc.pid!);
    expect(children.length).toBeGreaterThan(0);
    const killedAt = Date.now();
    victim.kill('SIGKILL');
    await victim.exited;
    await new Promise((r) => setTimeout(r, 10_000));
    stop = true;
    await Promise.all(load);

    // Its stdio servers ended with it (their stdin closed). One that was waiting for the
    // answer to its own request (a sampling request) when the replica died ends only when
    // that request times out (the SDK's default, 60 s after it was sent), not at once.
    const deadline = killedAt + 65_000;
    while (children.some(running) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(children.filter(running)).toEqual([]);

    // Requests in flight at the kill may break; after it, only the killed replica's sessions
    // fail, each once, with 404, and carry on after re-initializing.
    const GRACE = 1_000;
    const failedAfter = calls.filter((c) => c.error && c.started > killedAt + GRACE);
    for (const f of failedAfter) {
      expect(owners.get(f.sessionId!), JSON.stringify(f)).toBe(victimUrl);
      expect(f.status, JSON.stringify(f)).toBe(404);
    }
    const survivorSessionsFailed = calls.filter(
      (c) => c.error && c.started > killedAt + GRACE && owners.get(c.sessionId!) !== victimUrl,
    );
    expect(survivorSessionsFailed).toEqual([]);
    const victimClients = new Set(
      calls
        .filter((c) => c.started < killedAt && owners.get(c.sessionId!) === victimUrl)
        .map((c) => c.client),
    );
    expect(victimClients.size).toBeGreaterThan(0);
    for (const n of victimClients) {
      const last = calls.filter((c) => c.client === n).at(-1)!;
      expect(last.error, `client ${n} works again`).toBeUndefined();
      expect(owners.get(last.sessionId!)).toBe(replicas[0]!.url);
    }
    const okAfter = calls.filter((c) => !c.error && c.started > killedAt + GRACE);
    expect(new Set(okAfter.map((c) => c.client)).size).toBe(CLIENTS);

    // A session the killed replica held answers 404 on the survivor, and its entry is gone.
    const gone = [...owners.entries()].find(([, o]) => o === victimUrl)![0];
    const res = await rawMcp(`${caddyUrl}/mcp/every`, {
      key: ADMIN_TOKEN,
      sessionId: gone,
      body: { jsonrpc: '2.0', id: 9, method: 'tools/list' },
    });
    expect(res.status).toBe(404);
    expect(await redisCli.get(`${prefix}:mcp-session:${gone}`)).toBeNull();

    // The audit trail: every tools/call a client saw succeed on the survivor, or before the
    // kill, is recorded (the killed replica's last batch may be lost with it), and the chain
    // verifies.
    await new Promise((r) => setTimeout(r, 500));
    const exported = await fetch(`${caddyUrl}/api/audit/export?action=tools%2Fcall&format=jsonl`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(exported.status).toBe(200);
    const events = (await exported.text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { sessionId: string | null; toolName: string | null; status: string });
    const recorded = new Map<string, number>();
    for (const e of events) {
      if (e.status !== 'ok') continue;
      const k = `${e.sessionId} ${e.toolName}`;
      recorded.set(k, (recorded.get(k) ?? 0) + 1);
    }
    const TOOL = {
      progress: 'trigger-long-running-operation',
      sampling: 'trigger-sampling-request',
      echo: 'echo',
    };
    const expected = new Map<string, number>();
    for (const c of calls) {
      if (c.error || !(c.what in TOOL)) continue;
      if (owners.get(c.sessionId!) === victimUrl && c.ended > killedAt - GRACE) continue;
      const k = `${c.sessionId} ${TOOL[c.what as keyof typeof TOOL]}`;
      expected.set(k, (expected.get(k) ?? 0) + 1);
    }
    expect(expected.size).toBeGreaterThan(0);
    for (const [k, n] of expected) expect(recorded.get(k) ?? 0, k).toBeGreaterThanOrEqual(n);
    const verify = await admin.post('/api/audit/verify');
    expect(verify.status).toBe(200);
    expect(verify.body).toMatchObject({ ok: true });
  });

  it('the internal hop refuses a wrong secret, and a forged hop from outside never reaches a session', async () => {
    const init = await rawMcp(`${replicas[0]!.url}/mcp/every`, {
      key: ADMIN_TOKEN,
      body: initializeRequest(),
    });
    expect(init.status).toBe(200);
    const forged = await rawMcp(`${replicas[0]!.url}/mcp/every`, {
      key: ADMIN_TOKEN,
      sessionId: init.headers.get('mcp-session-id')!,
      body: { jsonrpc: '2.0', id: 2, method: 'tools/list' },
      headers: { 'x-gateway-hop-secret': 'not-the-secret', 'x-gateway-hop-ip': '10.1.2.3' },
    });
    expect(forged.status).toBe(403);
    // Without credentials the hop's secret is not enough: the owner authenticates the user.
    const anonymous = await rawMcp(`${replicas[0]!.url}/mcp/every`, {
      sessionId: init.headers.get('mcp-session-id')!,
      body: { jsonrpc: '2.0', id: 3, method: 'tools/list' },
      headers: { 'x-gateway-hop-secret': SECRET },
    });
    expect(anonymous.status).toBe(401);
  });
});
