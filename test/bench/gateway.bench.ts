// `npm run bench`: what the gateway costs. The same `tools/call echo` loop runs against
// server-everything directly and through `/mcp/{slug}` of an in-process gateway, at 1, 8
// and 32 concurrent clients (each its own MCP session), over Streamable HTTP and over stdio.
// Prints latency percentiles, the latency the gateway adds, throughput, and the memory one
// gateway session costs. Numbers come from here, never from timed unit tests.
//
// Usage: scripts/with-node.sh node test/bench/gateway.bench.ts [--calls 300] [--levels 1,8,32]
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { startServer, type RunningServer } from '../../server/src/runtime.ts';
import { testConfig, testLogger } from '../support/config.ts';
import {
  EVERYTHING_BIN,
  everythingStdio,
  NO_RATE_LIMITS,
  registerServer,
  remoteHttp,
  startEverythingHttp,
} from '../support/mcp.ts';
import { ADMIN_TOKEN, api, createUserKey } from '../support/server.ts';

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '300' },
    levels: { type: 'string', default: '1,8,32' },
    warmup: { type: 'string', default: '10' },
  },
});
const CALLS = Number(args.calls);
const LEVELS = args.levels.split(',').map(Number);
const WARMUP = Number(args.warmup);

// A full collection before each memory reading, without asking the caller for --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

type Connect = () => Promise<Client>;

interface Run {
  p50: number;
  p99: number;
  throughput: number;
}

async function openClients(n: number, connect: Connect): Promise<Client[]> {
  // In batches, so 32 stdio spawns do not all compete for the CPU at once.
  const clients: Client[] = [];
  for (let i = 0; i < n; i += 8) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(8, n - i) }, connect))));
  }
  return clients;
}

async function closeClients(clients: Client[]): Promise<void> {
  await Promise.allSettled(
    clients.map(async (c) => {
      const t = c.transport;
      if (t instanceof StreamableHTTPClientTransport) await t.terminateSession().catch(() => {});
      await c.close();
    }),
  );
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

/** N clients share CALLS sequential echo calls (each client one at a time), after a warm-up. */
async function measure(clients: Client[]): Promise<Run> {
  const echo = (c: Client, i: number) => c.callTool({ name: 'echo', arguments: { message: `bench ${i}` } });
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < WARMUP; i++) await echo(c, i);
    }),
  );
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      for (let i = next++; i < CALLS; i = next++) {
        const t0 = performance.now();
        const r = await echo(c, i);
        latencies.push(performance.now() - t0);
        if (r.isError) throw new Error(`echo failed: ${JSON.stringify(r.content)}`);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), throughput: CALLS / seconds };
}

async function bench(label: string, direct: Connect, gateway: Connect) {
  const rows: string[][] = [];
  for (const n of LEVELS) {
    const d = await openClients(n, direct);
    const dr = await measure(d);
    await closeClients(d);
    const g = await openClients(n, gateway);
    const gr = await measure(g);
    await closeClients(g);
    rows.push([
      String(n),
      dr.p50.toFixed(2),
      dr.p99.toFixed(2),
      gr.p50.toFixed(2),
      gr.p99.toFixed(2),
      (gr.p50 - dr.p50).toFixed(2),
      dr.throughput.toFixed(0),
      gr.throughput.toFixed(0),
    ]);
  }
  printTable(
    `tools/call echo, ${label} upstream (${CALLS} calls per level, ${WARMUP} warm-up calls per client)`,
    [
      [
        'clients',
        'direct p50 ms',
        'direct p99 ms',
        'gateway p50 ms',
        'gateway p99 ms',
        'added p50 ms',
        'direct calls/s',
        'gateway calls/s',
      ],
      ...rows,
    ],
  );
}

function printTable(title: string, rows: string[][]) {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  console.log(`\n${title}`);
  console.log(line(rows[0]!));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows.slice(1)) console.log(line(r));
}

/** RSS growth per session when opening `n` sessions at once (this process: clients, plus the gateway if it serves them). */
async function rssPerSession(
  n: number,
  connect: Connect,
): Promise<{ rss: number; heap: number; clients: Client[] }> {
  gc();
  const before = process.memoryUsage();
  const clients = await openClients(n, connect);
  await Promise.all(clients.map((c) => c.listTools()));
  gc();
  await new Promise((r) => setTimeout(r, 200));
  gc();
  const after = process.memoryUsage();
  return { rss: (after.rss - before.rss) / n, heap: (after.heapUsed - before.heapUsed) / n, clients };
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(2);

const cleanups: (() => Promise<unknown>)[] = [];
let server: RunningServer | undefined;
try {
  const upstream = await startEverythingHttp();
  cleanups.push(() => upstream.stop());
  server = await startServer(
    testConfig({ ...NO_RATE_LIMITS, ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN, UPSTREAM_ALLOW_LOOPBACK: 'true' }),
    testLogger(),
  );
  const admin = api(server.url, ADMIN_TOKEN);
  await registerServer(admin, remoteHttp('bench-http', upstream.url));
  await registerServer(admin, everythingStdio('bench-stdio'));
  const { key } = await createUserKey(server, 'bench');
  const gatewayUrl = server.url;

  const connectHttp =
    (url: URL, headers: Record<string, string> = {}) =>
    async () => {
      const client = new Client({ name: 'bench', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
      return client;
    };
  const viaGateway = (slug: string) =>
    connectHttp(new URL(`${gatewayUrl}/mcp/${slug}`), { Authorization: `Bearer ${key}` });
  const directStdio = async () => {
    const client = new Client({ name: 'bench', version: '1.0.0' });
    const transport: Transport = new StdioClientTransport({
      command: process.execPath,
      args: [EVERYTHING_BIN, 'stdio'],
      stderr: 'ignore',
    });
    await client.connect(transport);
    return client;
  };

  console.log(
    `gateway benchmark: Node ${process.version}, ${(await import('node:os')).cpus().length} CPUs, gateway in this process (PGlite, audit on)`,
  );
  // Memory: the gateway lives in this process, the upstream does not. Opening 32 direct
  // sessions measures what the clients alone cost here; the difference with 32 gateway
  // sessions is what the gateway holds per session (downstream transport, relay, upstream
  // client transport). stdio upstream processes are separate processes and not counted.
  // Measured first, before the latency runs raise the heap's high-water mark.
  const SESSIONS = 32;
  await closeClients(await openClients(2, connectHttp(upstream.url)));
  await closeClients(await openClients(2, viaGateway('bench-http')));
  // Both sets stay open until both are measured, so the second does not reuse memory the
  // first freed (RSS rarely shrinks after a GC).
  const direct = await rssPerSession(SESSIONS, connectHttp(upstream.url));
  const viaGw = await rssPerSession(SESSIONS, viaGateway('bench-http'));
  await closeClients([...direct.clients, ...viaGw.clients]);
  printTable(
    `memory per session (${SESSIONS} extra sessions to the Streamable HTTP upstream, after a full GC)`,
    [
      ['sessions', 'RSS/session MB', 'heap/session MB'],
      ['direct (clients only)', mb(direct.rss), mb(direct.heap)],
      ['through the gateway', mb(viaGw.rss), mb(viaGw.heap)],
      ['gateway share', mb(viaGw.rss - direct.rss), mb(viaGw.heap - direct.heap)],
    ],
  );
  await bench('Streamable HTTP', connectHttp(upstream.url), viaGateway('bench-http'));
  await bench('stdio', directStdio, viaGateway('bench-stdio'));
} catch (err) {
  console.error('benchmark failed:', err);
  process.exitCode = 1;
} finally {
  await server?.stop().catch(() => {});
  for (const c of cleanups.reverse()) await c().catch(() => {});
}
process.exit(process.exitCode ?? 0);
