// The MCP conformance suite (@modelcontextprotocol/conformance, every server scenario) run
// against /mcp/{slug} of a running gateway whose upstream is our conformance fixture over
// stdio, and against the same fixture served directly: every check the fixture passes on
// its own must pass through the gateway too, DNS-rebinding protection included.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, NO_RATE_LIMITS, registerServer } from '../support/mcp.ts';
import { createUserKey, useServer } from '../support/server.ts';

const require = createRequire(import.meta.url);
const manifest = require.resolve('@modelcontextprotocol/conformance/package.json');
const CONFORMANCE_BIN = path.join(
  path.dirname(manifest),
  (require(manifest) as { bin: Record<string, string> }).bin['conformance']!,
);
const FIXTURE = fileURLToPath(new URL('../fixtures/conformance-server.ts', import.meta.url));

// The suite cannot send credentials, so it talks to a pass-through proxy that adds the
// user's API key and leaves everything else, Host and Origin included, as the suite sent
// it. The gateway's public URL is the proxy's, as behind any reverse proxy.
const proxyPort = await freePort();
const ctx = useServer('pglite', { ...NO_RATE_LIMITS, PUBLIC_URL: `http://localhost:${proxyPort}` });
let proxy: Server;
const work = mkdtempSync(path.join(tmpdir(), 'gw-conformance-'));

/** Runs every server scenario against `url`; returns each check's status by `scenario/check`. */
async function runSuite(url: string, name: string): Promise<Map<string, string>> {
  const out = path.join(work, name);
  const child = spawn(
    process.execPath,
    [CONFORMANCE_BIN, 'server', '--suite', 'all', '--url', url, '-o', out],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  child.stdout.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  await new Promise((resolve) => child.once('exit', resolve));
  const checks = new Map<string, string>();
  for (const dir of readdirSync(out)) {
    const scenario = dir.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '');
    const list = JSON.parse(readFileSync(path.join(out, dir, 'checks.json'), 'utf8')) as Array<{
      id: string;
      status: string;
    }>;
    for (const c of list) checks.set(`${scenario}/${c.id}`, c.status);
  }
  if (!checks.size) throw new Error(`the conformance suite produced no results:\n${log}`);
  return checks;
}

/** Serves the fixture over Streamable HTTP on 127.0.0.1; resolves once it answers. */
async function startFixtureHttp(port: number) {
  const child = spawn(process.execPath, [FIXTURE, 'http', String(port)], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'GET' }).then(
      () => true,
      () => false,
    );
    if (up) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('the conformance fixture did not start');
}

beforeAll(async () => {
  await registerServer(ctx.admin, {
    slug: 'conformance',
    name: 'conformance fixture',
    transport: { type: 'stdio', command: process.execPath, args: [FIXTURE, 'stdio'], env: {} },
  } as { slug: string });
  const { key } = await createUserKey(ctx.server, 'conformance');
  const target = new URL(ctx.server.url);
  proxy = createServer((req, res) => {
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, authorization: `Bearer ${key}` },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve));
});

afterAll(async () => {
  proxy?.closeAllConnections();
  await new Promise((r) => proxy?.close(r));
  rmSync(work, { recursive: true, force: true });
});

/**
 * Checks the suite reports as INFO, "SSE streaming is optional", when a server answers a POST
 * with application/json: the gateway does for a lone request whose response is the first
 * message for it (gateway.transport.ts; the spec lets the server choose), so these checks
 * have nothing to look at through it. Every other check must pass as it does directly.
 */
const ANSWERED_WITH_JSON = new Set(['server-sse-multiple-streams/server-sse-streams-functional']);

describe('MCP conformance suite', () => {
  it('passes through /mcp/{slug} every check the fixture passes on its own', async () => {
    const fixturePort = await freePort();
    const fixture = await startFixtureHttp(fixturePort);
    let direct: Map<string, string>;
    try {
      direct = await runSuite(`http://127.0.0.1:${fixturePort}/mcp`, 'direct');
    } finally {
      fixture.kill('SIGKILL');
    }
    const passing = [...direct].filter(([, s]) => s === 'SUCCESS').map(([id]) => id);
    // The fixture covers the suite: a run that checked next to nothing proves nothing.
    expect(passing.length).toBeGreaterThan(35);
    expect(passing).toContain('dns-rebinding-protection/localhost-host-rebinding-rejected');

    const viaGateway = await runSuite(`http://127.0.0.1:${proxyPort}/mcp/conformance`, 'gateway');
    const lost = passing
      .filter((id) => viaGateway.get(id) !== 'SUCCESS')
      .filter((id) => !(ANSWERED_WITH_JSON.has(id) && viaGateway.get(id) === 'INFO'))
      .map((id) => `${id}: ${viaGateway.get(id)}`);
    expect(lost).toEqual([]);
    // Two full runs of the suite, each spawning its CLI: about 35 s on a quiet machine.
  }, 180_000);
});
