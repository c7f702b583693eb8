// Summarises V8 CPU profiles (`node --cpu-prof`, e.g. from `npm run bench -- --profile DIR`)
// by self and inclusive time, per function and per module (an npm package, a Node.js
// internal module, or a file of this repository). Inclusive time counts a function once per
// sample however deep it recurses. Shares are of the busy time (samples other than idle).
//
// When DIR holds the benchmark's windows.json, only samples inside the measured windows of
// the profiled process count (start-up, registration and shutdown do not).
//
// Usage: scripts/with-node.sh node test/bench/profile-summary.ts DIR|FILE.cpuprofile [--top 15] [--json]
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}
interface Window {
  label: string;
  pid?: number;
  clients: number;
  startUs: number;
  endUs: number;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Which package, Node.js module or repository file a script belongs to. */
export function moduleOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const [first, second] = url.slice(nm + '/node_modules/'.length).split('/');
    return first!.startsWith('@') ? `${first}/${second}` : first!;
  }
  if (url.startsWith('node:')) return url;
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  return path.isAbsolute(file) ? path.relative(ROOT, file) : file;
}

function functionOf(frame: CallFrame): string {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  return `${name} ${moduleOf(frame)}:${frame.lineNumber + 1}`;
}

interface Tally {
  busyUs: number;
  idleUs: number;
  selfFn: Map<string, number>;
  inclFn: Map<string, number>;
  selfMod: Map<string, number>;
  inclMod: Map<string, number>;
}

const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

/** Adds the samples of `profile` that fall in `windows` (all samples when there are none). */
export function tally(profile: CpuProfile, windows: Window[], into?: Tally): Tally {
  const t: Tally = into ?? {
    busyUs: 0,
    idleUs: 0,
    selfFn: new Map(),
    inclFn: new Map(),
    selfMod: new Map(),
    inclMod: new Map(),
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // A node's ancestry as function and module keys, computed once per node.
  const chains = new Map<number, { fns: Set<string>; mods: Set<string> }>();
  const chainOf = (id: number) => {
    let chain = chains.get(id);
    if (!chain) {
      chain = { fns: new Set(), mods: new Set() };
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const frame = byId.get(cur)!.callFrame;
        if (frame.functionName === '(root)') continue;
        chain.fns.add(functionOf(frame));
        chain.mods.add(moduleOf(frame));
      }
      chains.set(id, chain);
    }
    return chain;
  };
  const inWindow = (at: number) =>
    windows.length === 0 || windows.some((w) => at >= w.startUs && at < w.endUs);
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i]!;
    // A sample stands for the time until the next one.
    const weight = profile.timeDeltas[i + 1] ?? 0;
    if (!inWindow(at)) continue;
    const node = byId.get(profile.samples[i]!)!;
    if (node.callFrame.functionName === '(idle)') {
      t.idleUs += weight;
      continue;
    }
    t.busyUs += weight;
    add(t.selfFn, functionOf(node.callFrame), weight);
    add(t.selfMod, moduleOf(node.callFrame), weight);
    const chain = chainOf(node.id);
    for (const f of chain.fns) add(t.inclFn, f, weight);
    for (const m of chain.mods) add(t.inclMod, m, weight);
  }
  return t;
}

function top(m: Map<string, number>, n: number, busyUs: number) {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: us / 1000, share: us / busyUs }));
}

function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '15' }, json: { type: 'boolean', default: false } },
  });
  const target = positionals[0];
  if (!target) throw new Error('usage: profile-summary.ts DIR|FILE.cpuprofile [--top 15] [--json]');
  const files = statSync(target).isDirectory()
    ? readdirSync(target)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => path.join(target, f))
    : [target];
  const windowsFile = path.join(
    statSync(target).isDirectory() ? target : path.dirname(target),
    'windows.json',
  );
  const windows: Window[] = existsSync(windowsFile)
    ? (JSON.parse(readFileSync(windowsFile, 'utf8')) as Window[])
    : [];
  const n = Number(values.top);
  const report = files.map((file) => {
    // Node names profiles CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile.
    const pid = Number(path.basename(file).split('.')[3]);
    const own = windows.filter((w) => w.pid === undefined || w.pid === pid);
    const t = tally(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, own);
    return {
      file,
      windows: own.map((w) => `${w.label} c=${w.clients}`),
      busyMs: t.busyUs / 1000,
      idleMs: t.idleUs / 1000,
      selfFunctions: top(t.selfFn, n, t.busyUs),
      inclusiveFunctions: top(t.inclFn, n, t.busyUs),
      selfModules: top(t.selfMod, n, t.busyUs),
      inclusiveModules: top(t.inclMod, n, t.busyUs),
      // This repository's files alone: where in the gateway's own code the time is spent.
      inclusiveProjectFiles: top(
        new Map([...t.inclMod].filter(([m]) => /^(server|workers|shared)\//.test(m))),
        n,
        t.busyUs,
      ),
    };
  });
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const pct = (s: number) => `${(s * 100).toFixed(1)}%`.padStart(6);
  for (const r of report) {
    console.log(`\n${r.file}`);
    console.log(
      `windows: ${r.windows.join(', ') || 'whole profile'}; busy ${r.busyMs.toFixed(0)} ms, idle ${r.idleMs.toFixed(0)} ms`,
    );
    for (const [title, rows] of [
      ['self time by function', r.selfFunctions],
      ['inclusive time by function', r.inclusiveFunctions],
      ['self time by module', r.selfModules],
      ['inclusive time by module', r.inclusiveModules],
      ['inclusive time by file of this repository', r.inclusiveProjectFiles],
    ] as const) {
      console.log(`\n${title} (share of busy time)`);
      for (const row of rows)
        console.log(`${pct(row.share)}  ${row.ms.toFixed(0).padStart(7)} ms  ${row.name}`);
    }
  }
}

main();
