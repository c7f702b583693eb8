// `npm run bench`: what the gateway costs, measured on a gateway running as its own process
// (server/src/main.ts, configured like a deployment: auth and audit on, request logging at
// info, rate limits off), never inside this process.
//
// Latency and throughput: the same `tools/call echo` loop (the SDK's Client over Streamable
// HTTP, each client its own MCP session) at 1, 8 and 32 concurrent clients against
// server-everything over stdio — spawned directly by this process, behind the gateway's
// /mcp/{slug}, and with --peers behind `mcp-proxy` and `supergateway` (plain stdio→HTTP
// bridges from npm, one child per session like the gateway) — and against server-everything
// over Streamable HTTP, directly and behind the gateway. Targets take turns within each
// level so that a noisy machine spreads its noise over all of them: compare ratios within
// one run, not numbers across runs.
//
// Process measurements (a fresh gateway each): RSS with 1,000 idle sessions on a remote
// upstream, and `initialize` + `tools/list` on the aggregate /mcp over 5 servers, warm.
//
// The gateway runs on PGlite, and also on PostgreSQL (a fresh database) when DATABASE_URL
// is set.
//
// Usage: npm run bench -- [--peers] [--json] [--calls 300] [--levels 1,8,32] [--warmup 10]
//          [--rounds 3] [--sessions 1000] [--aggregate-runs 10]
//        npm run bench -- --profile /tmp/prof --levels 32 --calls 6000
//          (only the gateway over stdio, spawned with --cpu-prof; then
//           scripts/with-node.sh node test/bench/profile-summary.ts /tmp/prof)
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Engine } from '../support/database.ts';
import { everythingStdio, remoteHttp, startEverythingHttp } from '../support/mcp.ts';
import {
  closeClients,
  combine,
  connectHttp,
  connectStdioDirect,
  median,
  measure,
  openClients,
  type Connect,
  type Run,
} from './bench.load.ts';
import { mib, printTable } from './bench.report.ts';
import {
  startGateway,
  startMcpProxy,
  startSupergateway,
  cpuMsOf,
  type GatewayTarget,
  type Target,
} from './bench.targets.ts';

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '300' },
    levels: { type: 'string', default: '1,8,32' },
    warmup: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    peers: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    sessions: { type: 'string', default: '1000' },
    'aggregate-runs': { type: 'string', default: '10' },
    profile: { type: 'string' },
  },
});
const CALLS = Number(args.calls);
const LEVELS = args.levels.split(',').map(Number);
const WARMUP = Number(args.warmup);
const ROUNDS = Number(args.rounds);
const SESSIONS = Number(args.sessions);
const AGGREGATE_RUNS = Number(args['aggregate-runs']);
const PROFILE_DIR = args.profile ? path.resolve(args.profile) : undefined;
// eslint-disable-next-line no-restricted-properties -- the benchmark's own switch, as in the tests
const ENGINES: Engine[] = process.env['DATABASE_URL'] ? ['pglite', 'postgres'] : ['pglite'];
const AGGREGATE_SERVERS = 5;

/** Progress goes to stderr, so that --json leaves stdout to the result. */
const progress = (msg: string) => process.stderr.write(`${msg}\n`);
const engineLabel = (e: Engine) => (e === 'pglite' ? 'PGlite' : 'PostgreSQL');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LoadTarget {
  label: string;
  kind: 'direct' | 'peer' | 'gateway';
  connect: Connect;
  /** The process that serves it, when the benchmark started one. */
  pid?: number;
}

/** CPU time of the process serving `t`, when there is one apart from this process. */
const cpuReader = (t: LoadTarget) => (t.pid === undefined ? undefined : () => cpuMsOf(t.pid!));

/** One section's results: target label → concurrency → run. */
type Results = Record<string, Record<number, Run>>;

/** Monotonic microseconds, the clock of V8's CPU profiles. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
const profileWindows: { label: string; pid?: number; clients: number; startUs: number; endUs: number }[] = [];

/**
 * ROUNDS rounds; in each, every level, and in each level every target in turn, the order of
 * the targets rotating from round to round so that none always runs first or last.
 */
async function runSection(title: string, targets: LoadTarget[]): Promise<Results> {
  const runs = new Map<string, Run[]>();
  for (let round = 0; round < ROUNDS; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
    for (const n of LEVELS) {
      for (const t of order) {
        progress(`${title}, round ${round + 1}/${ROUNDS}: ${t.label}, ${n} client(s)`);
        const clients = await openClients(n, t.connect);
        const startUs = monotonicUs();
        const run = await measure(clients, CALLS, WARMUP, cpuReader(t));
        profileWindows.push({ label: t.label, pid: t.pid, clients: n, startUs, endUs: monotonicUs() });
        await closeClients(clients);
        const key = `${t.label}\0${n}`;
        runs.set(key, [...(runs.get(key) ?? []), run]);
      }
    }
  }
  return Object.fromEntries(
    targets.map((t) => [
      t.label,
      Object.fromEntries(LEVELS.map((n) => [n, combine(runs.get(`${t.label}\0${n}`)!)])),
    ]),
  );
}

function printSection(title: string, results: Results) {
  const header = [
    'target',
    ...LEVELS.flatMap((n) => [`c=${n} p50/p99 ms`, `c=${n} calls/s`, `c=${n} CPU ms/call`]),
  ];
  const rows = Object.entries(results).map(([label, byLevel]) => [
    label,
    ...LEVELS.flatMap((n) => {
      const r = byLevel[n]!;
      return [
        `${r.p50.toFixed(2)} / ${r.p99.toFixed(2)}`,
        r.throughput.toFixed(0),
        r.cpuPerCallMs === undefined ? '-' : r.cpuPerCallMs.toFixed(2),
      ];
    }),
  ]);
  printTable(
    `${title} (${ROUNDS} rounds of ${CALLS} calls per level, ${WARMUP} warm-up calls per client; ` +
      'p50/p99 over all rounds, calls/s the median round)',
    [header, ...rows],
  );
}

interface Ratio {
  gateway: string;
  versus: string;
  /** Gateway throughput ÷ the other's, per concurrency level. */
  throughput: Record<number, number>;
  /** Gateway p50 − the other's at the lowest level, ms. */
  p50DeltaMs: number;
  /** Gateway CPU per call ÷ the other's, per level (when both are separate processes). */
  cpuPerCall: Record<number, number | undefined>;
}

function ratios(results: Results, targets: LoadTarget[]): Ratio[] {
  const low = LEVELS[0]!;
  const out: Ratio[] = [];
  // Against the peers when they ran (a stdio child spoken to directly has no HTTP leg at
  // all, so it is no peer of an HTTP relay), otherwise against the direct upstream.
  const peers = targets.filter((t) => t.kind === 'peer');
  const others = peers.length > 0 ? peers : targets.filter((t) => t.kind === 'direct');
  for (const g of targets.filter((t) => t.kind === 'gateway')) {
    for (const o of others) {
      const gr = results[g.label]!;
      const or = results[o.label]!;
      out.push({
        gateway: g.label,
        versus: o.label,
        throughput: Object.fromEntries(LEVELS.map((n) => [n, gr[n]!.throughput / or[n]!.throughput])),
        p50DeltaMs: gr[low]!.p50 - or[low]!.p50,
        cpuPerCall: Object.fromEntries(
          LEVELS.map((n) => [
            n,
            gr[n]!.cpuPerCallMs !== undefined && or[n]!.cpuPerCallMs
              ? gr[n]!.cpuPerCallMs / or[n]!.cpuPerCallMs
              : undefined,
          ]),
        ),
      });
    }
  }
  return out;
}

function printRatios(title: string, list: Ratio[], results: Results, targets: LoadTarget[]) {
  if (list.length === 0) return;
  const low = LEVELS[0]!;
  printTable(title, [
    [
      'gateway ÷ other',
      ...LEVELS.map((n) => `c=${n} calls/s`),
      `p50 Δ at c=${low} ms`,
      ...LEVELS.map((n) => `c=${n} CPU/call`),
    ],
    ...list.map((r) => [
      `${r.gateway} ÷ ${r.versus}`,
      ...LEVELS.map((n) => `${r.throughput[n]!.toFixed(2)}×`),
      `${r.p50DeltaMs >= 0 ? '+' : ''}${r.p50DeltaMs.toFixed(2)}`,
      ...LEVELS.map((n) => (r.cpuPerCall[n] === undefined ? '-' : `${r.cpuPerCall[n].toFixed(2)}×`)),
    ]),
  ]);
  const peers = targets.filter((t) => t.kind === 'peer');
  if (peers.length === 0) return;
  const best = peers.reduce((a, b) => (results[b.label]![low]!.p50 < results[a.label]![low]!.p50 ? b : a));
  for (const g of targets.filter((t) => t.kind === 'gateway')) {
    const d = results[g.label]![low]!.p50 - results[best.label]![low]!.p50;
    console.log(
      `p50 at c=${low}: ${g.label} ${results[g.label]![low]!.p50.toFixed(2)} ms, best peer ${best.label} ` +
        `${results[best.label]![low]!.p50.toFixed(2)} ms: ${d >= 0 ? '+' : ''}${d.toFixed(2)} ms`,
    );
  }
}

interface ProcessMeasurement {
  engine: Engine;
  sessions: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  rssPerSessionBytes: number;
  aggregateServers: number;
  aggregateTools: number;
  aggregateColdMs: number;
  aggregateWarmMedianMs: number;
  aggregateWarmMs: number[];
}

/**
 * On a fresh gateway: RSS with SESSIONS idle sessions on a remote upstream (clients
 * initialized, nothing in flight), then initialize + tools/list on the aggregate /mcp.
 */
async function measureProcess(engine: Engine, upstreamUrl: URL): Promise<ProcessMeasurement> {
  const slugs = Array.from({ length: AGGREGATE_SERVERS }, (_, i) => `agg-${i + 1}`);
  const gw = await startGateway({
    engine,
    label: `gateway-process-${engine}`,
    servers: [remoteHttp('idle', upstreamUrl), ...slugs.map((s) => remoteHttp(s, upstreamUrl))],
  });
  try {
    const idle = connectHttp(`${gw.url}/mcp/idle`, {
      Authorization: `Bearer ${await gw.createKey(['idle'])}`,
    });
    // Code paths of a session loaded and compiled before the baseline is read.
    await closeClients(await openClients(4, idle));
    await sleep(2_000);
    const rssBeforeBytes = gw.rss();
    progress(`${engineLabel(engine)}: opening ${SESSIONS} idle sessions`);
    const clients = await openClients(SESSIONS, idle, 50);
    await sleep(3_000);
    const rssAfterBytes = gw.rss();
    progress(`${engineLabel(engine)}: closing them`);
    await closeClients(clients);

    const agg = connectHttp(`${gw.url}/mcp`, { Authorization: `Bearer ${await gw.createKey(slugs)}` });
    const times: number[] = [];
    let tools = 0;
    for (let i = 0; i <= AGGREGATE_RUNS; i++) {
      const t0 = performance.now();
      const client = await agg();
      tools = (await client.listTools()).tools.length;
      times.push(performance.now() - t0);
      await closeClients([client]);
    }
    const [cold, ...warm] = times;
    return {
      engine,
      sessions: SESSIONS,
      rssBeforeBytes,
      rssAfterBytes,
      rssPerSessionBytes: (rssAfterBytes - rssBeforeBytes) / SESSIONS,
      aggregateServers: AGGREGATE_SERVERS,
      aggregateTools: tools,
      aggregateColdMs: cold!,
      aggregateWarmMedianMs: median(warm),
      aggregateWarmMs: warm,
    };
  } finally {
    await gw.stop();
  }
}

const stops: (() => Promise<unknown>)[] = [];
const stopAll = async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  stops.length = 0;
};
// Interrupted, it still stops what it started (they run in process groups of their own).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping`);
    void stopAll().finally(() => process.exit(130));
  });
}
const output: Record<string, unknown> = {
  node: process.version,
  cpus: cpus().length,
  calls: CALLS,
  warmup: WARMUP,
  rounds: ROUNDS,
  levels: LEVELS,
  engines: ENGINES,
  at: new Date().toISOString(),
};
try {
  const upstream = await startEverythingHttp();
  stops.push(() => upstream.stop());

  if (!PROFILE_DIR) {
    output['process'] = [];
    for (const engine of ENGINES) {
      (output['process'] as ProcessMeasurement[]).push(await measureProcess(engine, upstream.url));
    }
  }

  if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
  const gateways: GatewayTarget[] = [];
  for (const engine of ENGINES) {
    progress(`starting the gateway on ${engineLabel(engine)}`);
    const gw = await startGateway({
      engine,
      label: `gateway ${engineLabel(engine)}`,
      servers: [everythingStdio('bench-stdio'), remoteHttp('bench-http', upstream.url)],
      ...(PROFILE_DIR ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] } : {}),
    });
    stops.push(() => gw.stop());
    gateways.push(gw);
  }
  const peers: Target[] = [];
  if (args.peers && !PROFILE_DIR) {
    progress('starting mcp-proxy and supergateway');
    for (const start of [startMcpProxy, startSupergateway]) {
      const peer = await start();
      stops.push(() => peer.stop());
      peers.push(peer);
    }
  }
  const keys = await Promise.all(gateways.map((g) => g.createKey(['bench-stdio', 'bench-http'])));
  const viaGateway = (slug: string): LoadTarget[] =>
    gateways.map((g, i) => ({
      label: g.label,
      kind: 'gateway',
      pid: g.pid,
      connect: connectHttp(`${g.url}/mcp/${slug}`, { Authorization: `Bearer ${keys[i]!}` }),
    }));

  const stdioTargets: LoadTarget[] = [
    ...(PROFILE_DIR
      ? []
      : [{ label: 'direct (stdio)', kind: 'direct' as const, connect: connectStdioDirect }]),
    ...peers.map((p) => ({ label: p.label, kind: 'peer' as const, pid: p.pid, connect: connectHttp(p.url) })),
    ...viaGateway('bench-stdio'),
  ];
  const stdio = await runSection('stdio upstream', stdioTargets);
  output['stdio'] = stdio;
  output['stdioRatios'] = ratios(stdio, stdioTargets);

  let http: Results | undefined;
  const httpTargets: LoadTarget[] = [
    {
      label: 'direct (Streamable HTTP)',
      kind: 'direct',
      ...(upstream.proc.pid ? { pid: upstream.proc.pid } : {}),
      connect: connectHttp(upstream.url),
    },
    ...viaGateway('bench-http'),
  ];
  if (!PROFILE_DIR) {
    http = await runSection('Streamable HTTP upstream', httpTargets);
    output['http'] = http;
    output['httpRatios'] = ratios(http, httpTargets);
  }

  if (PROFILE_DIR) {
    // Stopping the gateway (SIGTERM) is what makes Node write the .cpuprofile.
    writeFileSync(path.join(PROFILE_DIR, 'windows.json'), JSON.stringify(profileWindows, null, 2));
    for (const g of gateways) await g.stop();
    progress(`profiles in ${PROFILE_DIR}; measured windows in ${path.join(PROFILE_DIR, 'windows.json')}`);
  }

  if (args.json) {
    // Per-call latencies stay out: p50 and p99 say what they say.
    console.log(JSON.stringify(output, (k, v: unknown) => (k === 'latencies' ? undefined : v), 2));
  } else {
    console.log(
      `gateway benchmark: Node ${process.version}, ${cpus().length} CPUs, gateway as its own process ` +
        `(${ENGINES.map(engineLabel).join(' and ')}, auth and audit on, request logs at info to a file)`,
    );
    for (const m of (output['process'] as ProcessMeasurement[] | undefined) ?? []) {
      printTable(`gateway process on ${engineLabel(m.engine)}`, [
        ['measurement', 'value'],
        [`RSS before ${m.sessions} sessions MiB`, mib(m.rssBeforeBytes)],
        [`RSS with ${m.sessions} idle sessions (remote upstream) MiB`, mib(m.rssAfterBytes)],
        ['RSS per session KiB', (m.rssPerSessionBytes / 1024).toFixed(1)],
        [
          `aggregate /mcp over ${m.aggregateServers} servers: initialize + tools/list, cold ms`,
          m.aggregateColdMs.toFixed(1),
        ],
        [
          `  same, warm, median of ${m.aggregateWarmMs.length} ms (${m.aggregateTools} tools)`,
          m.aggregateWarmMedianMs.toFixed(1),
        ],
      ]);
    }
    printSection('tools/call echo, server-everything over stdio', stdio);
    printRatios(
      'ratios, stdio upstream (throughput: higher is better)',
      output['stdioRatios'] as Ratio[],
      stdio,
      stdioTargets,
    );
    if (http) {
      printSection('tools/call echo, server-everything over Streamable HTTP', http);
      printRatios('ratios, Streamable HTTP upstream', output['httpRatios'] as Ratio[], http, httpTargets);
    }
  }
} catch (err) {
  console.error('benchmark failed:', err);
  process.exitCode = 1;
} finally {
  await stopAll();
}
process.exit(process.exitCode ?? 0);
