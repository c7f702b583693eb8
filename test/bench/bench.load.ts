// The client side of the benchmark: the SDK's real Client, N of them at once (each its own
// MCP session), sharing a fixed number of sequential `tools/call echo` calls.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { EVERYTHING_BIN } from '../support/mcp.ts';

/** Opens one MCP session (initialize handshake done). */
export type Connect = () => Promise<Client>;

export interface Run {
  /** Median latency of one call, ms. */
  p50: number;
  /** 99th percentile latency, ms. */
  p99: number;
  /** Calls per second over the whole run, all clients together. */
  throughput: number;
  /** Every call's latency, ms, ascending. */
  latencies: number[];
  /** CPU time (user + system) the serving process spent per call, ms, when it is known. */
  cpuPerCallMs?: number | undefined;
}

/** Several runs of one target at one level as one: pooled latencies, the median throughput. */
export function combine(runs: Run[]): Run {
  const latencies = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    throughput: median(runs.map((r) => r.throughput)),
    latencies,
    cpuPerCallMs: runs.every((r) => r.cpuPerCallMs !== undefined)
      ? median(runs.map((r) => r.cpuPerCallMs!))
      : undefined,
  };
}

/** A Streamable HTTP session to `url`, with `headers` on every request. */
export function connectHttp(url: string | URL, headers: Record<string, string> = {}): Connect {
  return async () => {
    const client = new Client({ name: 'bench', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    return client;
  };
}

/** server-everything spawned over stdio by this process: the floor of any stdio relay. */
export const connectStdioDirect: Connect = async () => {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [EVERYTHING_BIN, 'stdio'],
      stderr: 'ignore',
    }),
  );
  return client;
};

/** Opens `n` sessions, `batch` at a time, so a burst of stdio spawns does not starve the CPU. */
export async function openClients(n: number, connect: Connect, batch = 8): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < n; i += batch) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, connect))));
  }
  return clients;
}

/** Ends each session (DELETE for HTTP, so the server frees it now) and closes the clients. */
export async function closeClients(clients: Client[]): Promise<void> {
  await Promise.allSettled(
    clients.map(async (c) => {
      const t = c.transport;
      if (t instanceof StreamableHTTPClientTransport) await t.terminateSession().catch(() => {});
      await c.close();
    }),
  );
}

/** The p-th percentile (nearest rank) of ascending `sorted`. */
export const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;

/** The median of `values` (not sorted in place). */
export const median = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

/**
 * The clients share `calls` echo calls, each client one call at a time, after `warmup`
 * calls per client; throughput is calls over the wall time of the measured part.
 */
export async function measure(
  clients: Client[],
  calls: number,
  warmup: number,
  /** CPU ms the serving process has used so far (read before and after the measured calls). */
  cpuMs?: () => number,
): Promise<Run> {
  const echo = (c: Client, i: number) => c.callTool({ name: 'echo', arguments: { message: `bench ${i}` } });
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < warmup; i++) await echo(c, i);
    }),
  );
  const latencies: number[] = [];
  let next = 0;
  const cpuBefore = cpuMs?.();
  const started = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      for (let i = next++; i < calls; i = next++) {
        const t0 = performance.now();
        const r = await echo(c, i);
        latencies.push(performance.now() - t0);
        if (r.isError) throw new Error(`echo failed: ${JSON.stringify(r.content)}`);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpuPerCallMs = cpuBefore === undefined ? undefined : (cpuMs!() - cpuBefore) / calls;
  latencies.sort((a, b) => a - b);
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    throughput: calls / seconds,
    latencies,
    cpuPerCallMs,
  };
}
