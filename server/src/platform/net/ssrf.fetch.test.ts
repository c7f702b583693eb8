import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createGuardedFetch } from './ssrf.fetch.ts';
import { dev, dns, noDns, strict } from '../../../../test/support/ssrf.ts';
import { assertUrlAllowed, type LookupFn, SsrfError } from './ssrf.policy.ts';

async function fetchError(promise: Promise<unknown>): Promise<SsrfError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof SsrfError)) {
    throw new Error(`expected SsrfError, got ${String(error)}`);
  }
  return error;
}

interface TestServer {
  origin: string;
  hits: string[];
}

describe('createGuardedFetch', () => {
  const servers: http.Server[] = [];

  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    }
  });

  async function serve(
    handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
  ): Promise<TestServer> {
    const hits: string[] = [];
    const server = http.createServer((req, res) => {
      hits.push(`${req.method ?? ''} ${req.url ?? ''}`);
      handler(req, res);
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits };
  }

  async function readBody(req: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) {
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString();
  }

  /** Echoes the request; `/r/<n>` redirects n more times before answering. */
  async function echoServer(): Promise<TestServer> {
    return serve((req, res) => {
      void readBody(req).then((body) => {
        const path = req.url ?? '/';
        const hops = /^\/r\/(\d+)$/.exec(path);
        if (hops) {
          const left = Number(hops[1]);
          res.writeHead(302, { location: left > 1 ? `/r/${left - 1}` : '/done' }).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            method: req.method,
            path,
            body,
            auth: req.headers.authorization,
            type: req.headers['content-type'],
          }),
        );
      });
    });
  }

  it('fetches from a loopback server when loopback is allowed, with string, URL and Request inputs', async () => {
    const server = await echoServer();
    const guarded = createGuardedFetch(dev, { lookup: noDns });

    const get = await guarded(`${server.origin}/hello`);
    expect(get.status).toBe(200);
    expect(await get.json()).toMatchObject({ method: 'GET', path: '/hello', body: '' });

    const post = await guarded(new URL('/rpc', server.origin), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer t0k' },
      body: '{"jsonrpc":"2.0"}',
    });
    expect(await post.json()).toMatchObject({
      method: 'POST',
      body: '{"jsonrpc":"2.0"}',
      auth: 'Bearer t0k',
    });

    const request = new Request(`${server.origin}/req`, { method: 'PUT', body: 'payload' });
    expect(await (await guarded(request)).json()).toMatchObject({
      method: 'PUT',
      path: '/req',
      body: 'payload',
    });
  });

  it('refuses before connecting when the URL is not allowed', async () => {
    const server = await echoServer();
    const guarded = createGuardedFetch(strict, { lookup: noDns });
    const error = await fetchError(guarded(`${server.origin}/secret?token=abc`));
    expect(error.message).toBe(
      `refused to connect to ${server.origin}: plain http is not allowed (https only; set UPSTREAM_ALLOW_LOOPBACK=true to reach servers on this machine over http)`,
    );
    await fetchError(guarded(new Request(`${server.origin}/`)));
    expect(server.hits).toEqual([]);
  });

  it('streams a chunked event-stream response as it arrives', async () => {
    let sendSecond: () => void = () => undefined;
    const secondSent = new Promise<void>((resolve) => {
      sendSecond = resolve;
    });
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      void secondSent.then(() => res.end('data: second\n\n'));
    });
    const response = await createGuardedFetch(dev, { lookup: noDns })(`${server.origin}/sse`, {
      headers: { accept: 'text/event-stream' },
    });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    // The server holds the second event back until the first has been read here.
    expect((await reader.read()).value).toBe('data: first\n\n');
    sendSecond();
    expect((await reader.read()).value).toBe('data: second\n\n');
    expect((await reader.read()).done).toBe(true);
  });

  it('follows same-origin redirects, keeping headers, and turns a 303 after POST into a GET', async () => {
    const server = await serve((req, res) => {
      void readBody(req).then((body) => {
        if (req.url === '/old') {
          res.writeHead(301, { location: '/new' }).end();
        } else if (req.url === '/temp') {
          res.writeHead(307, { location: `${server.origin}/new` }).end();
        } else if (req.url === '/see-other') {
          res.writeHead(303, { location: '/new' }).end();
        } else {
          res
            .writeHead(200)
            .end(JSON.stringify({ method: req.method, body, auth: req.headers.authorization }));
        }
      });
    });
    const guarded = createGuardedFetch(dev, { lookup: noDns });
    const headers = { authorization: 'Bearer t0k', 'content-type': 'text/plain' };

    const moved = await guarded(`${server.origin}/old`, { headers });
    expect(await moved.json()).toEqual({ method: 'GET', body: '', auth: 'Bearer t0k' });
    expect(moved.url).toBe(`${server.origin}/new`);

    const temp = await guarded(`${server.origin}/temp`, { method: 'POST', body: 'again', headers });
    expect(await temp.json()).toEqual({ method: 'POST', body: 'again', auth: 'Bearer t0k' });

    const seeOther = await guarded(`${server.origin}/see-other`, { method: 'POST', body: 'once', headers });
    expect(await seeOther.json()).toEqual({ method: 'GET', body: '', auth: 'Bearer t0k' });
    expect(server.hits).toEqual([
      'GET /old',
      'GET /new',
      'POST /temp',
      'POST /new',
      'POST /see-other',
      'GET /new',
    ]);
  });

  it('refuses a redirect to another origin and never contacts it', async () => {
    const other = await echoServer();
    const server = await serve((_req, res) => {
      res.writeHead(302, { location: `${other.origin}/steal?token=abc` }).end();
    });
    const error = await fetchError(
      createGuardedFetch(dev, { lookup: noDns })(`${server.origin}/start`, {
        headers: { authorization: 'Bearer t0k' },
      }),
    );
    expect(error.message).toBe(
      `refused to connect to ${other.origin}: redirect from ${server.origin} to a different origin`,
    );
    expect(other.hits).toEqual([]);
  });

  it('refuses a redirect that adds credentials or leaves for a blocked address', async () => {
    const server = await serve((req, res) => {
      const location =
        req.url === '/creds' ? `http://user:pw@${req.headers.host ?? ''}/x` : 'https://169.254.169.254/';
      res.writeHead(302, { location }).end();
    });
    const guarded = createGuardedFetch(dev, { lookup: noDns });
    expect((await fetchError(guarded(`${server.origin}/creds`))).reason).toContain('credentials');
    expect((await fetchError(guarded(`${server.origin}/meta`))).message).toContain('169.254.169.254');
  });

  it('follows at most 5 redirects', async () => {
    const server = await echoServer();
    const guarded = createGuardedFetch(dev, { lookup: noDns });
    expect(await (await guarded(`${server.origin}/r/5`)).json()).toMatchObject({ path: '/done' });
    const error = await fetchError(guarded(`${server.origin}/r/6`));
    expect(error.reason).toBe('more than 5 redirects');
  });

  it('returns a redirect as it is with redirect: manual, and fails on one with redirect: error', async () => {
    const server = await echoServer();
    const guarded = createGuardedFetch(dev, { lookup: noDns });
    const response = await guarded(`${server.origin}/r/1`, { redirect: 'manual' });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/done');
    await expect(guarded(`${server.origin}/r/1`, { redirect: 'error' })).rejects.toThrow(TypeError);
  });

  it('connects through the checked lookup: a host resolving to loopback is refused at connect time', async () => {
    const calls: string[] = [];
    const guarded = createGuardedFetch(strict, { lookup: dns({ 'internal.test': ['127.0.0.1'] }, calls) });
    const error = await fetchError(guarded('https://internal.test:8443/mcp?secret=1'));
    expect(error.message).toBe(
      'refused to connect to https://internal.test:8443: internal.test resolves to 127.0.0.1, which is a loopback address',
    );
    expect(calls).toEqual(['internal.test']);
  });

  it('refuses the connection when DNS rebinds after the registration check', async () => {
    let lookups = 0;
    const rebinding: LookupFn = () => {
      lookups += 1;
      return Promise.resolve([{ address: lookups === 1 ? '93.184.216.34' : '169.254.169.254', family: 4 }]);
    };
    await expect(assertUrlAllowed('https://rebind.test/mcp', strict, rebinding)).resolves.toBeUndefined();
    const error = await fetchError(
      createGuardedFetch(strict, { lookup: rebinding })('https://rebind.test/mcp'),
    );
    expect(error.reason).toBe('rebind.test resolves to 169.254.169.254, which is a cloud metadata address');
    expect(lookups).toBe(2);
  });

  it('connects to a loopback name at the address its checked lookup returned', async () => {
    const server = await echoServer();
    const calls: string[] = [];
    const port = new URL(server.origin).port;
    const guarded = createGuardedFetch(dev, { lookup: dns({ localhost: ['127.0.0.1'] }, calls) });
    expect(await (await guarded(`http://localhost:${port}/named`)).json()).toMatchObject({ path: '/named' });
    expect(calls).toEqual(['localhost']);
  });

  it('lets network errors through as fetch errors', async () => {
    const guarded = createGuardedFetch(strict, { lookup: noDns });
    const error: unknown = await guarded('https://nowhere.test/').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(error).not.toBeInstanceOf(SsrfError);
  });

  it('serves as the fetch of the MCP SDK client over Streamable HTTP', async () => {
    const server = await serve((req, res) => {
      const mcp = new McpServer({ name: 'echo', version: '1.0.0' });
      mcp.registerTool('echo', { inputSchema: { text: z.string() } }, ({ text }) => ({
        content: [{ type: 'text', text }],
      }));
      // Stateless: one server and transport per request.
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => void transport.close());
      void mcp.connect(transport).then(() => transport.handleRequest(req, res));
    });
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${server.origin}/mcp`), {
        fetch: createGuardedFetch(dev, { lookup: noDns }),
      }),
    );
    const result = await client.callTool({ name: 'echo', arguments: { text: 'through the guard' } });
    expect(result.content).toEqual([{ type: 'text', text: 'through the guard' }]);
    await client.close();
  });
});
