// The Streamable HTTP wire as a client sees it from the gateway's own transport
// (gateway.transport.ts): a lone request is answered with application/json when nothing
// precedes its response, and turns into an SSE stream as soon as something does (progress);
// the transport's own refusals keep the SDK server's status codes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  everythingStdio,
  NO_RATE_LIMITS,
  rawMcp,
  registerServer,
  initializeRequest,
} from '../support/mcp.ts';
import { ADMIN_TOKEN, useServer } from '../support/server.ts';

const ctx = useServer('pglite', NO_RATE_LIMITS);
const url = () => `${ctx.server.url}/mcp/wire`;
let sessionId: string;

beforeAll(async () => {
  await registerServer(ctx.admin, everythingStdio('wire'));
  const init = await rawMcp(url(), { key: ADMIN_TOKEN, body: initializeRequest(1, 'wire-test') });
  expect(init.status).toBe(200);
  expect(init.headers.get('content-type')).toBe('application/json');
  expect(init.json.result.serverInfo.name).toBe('mcp-servers/everything');
  sessionId = init.headers.get('mcp-session-id')!;
  expect(sessionId).toBeTruthy();
  const initialized = await rawMcp(url(), {
    key: ADMIN_TOKEN,
    sessionId,
    body: { jsonrpc: '2.0', method: 'notifications/initialized' },
  });
  expect(initialized.status).toBe(202);
});

afterAll(async () => {
  if (sessionId) await rawMcp(url(), { method: 'DELETE', key: ADMIN_TOKEN, sessionId });
});

describe('the gateway transport on the wire', () => {
  it('answers a lone tools/call with application/json and the session header', async () => {
    const res = await rawMcp(url(), {
      key: ADMIN_TOKEN,
      sessionId,
      body: {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'echo', arguments: { message: 'hi' } },
      },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('mcp-session-id')).toBe(sessionId);
    expect(res.json).toMatchObject({ jsonrpc: '2.0', id: 2, result: { content: [{ text: 'Echo: hi' }] } });
  });

  it('streams progress before the result as SSE on the request own response', async () => {
    const res = await rawMcp(url(), {
      key: ADMIN_TOKEN,
      sessionId,
      body: {
        jsonrpc: '2.0',
        id: 3,
        method: 'tools/call',
        params: {
          name: 'trigger-long-running-operation',
          arguments: { duration: 0.2, steps: 2 },
          _meta: { progressToken: 'p-1' },
        },
      },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const messages = res.text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map(
        (l) =>
          JSON.parse(l.slice(6)) as { method?: string; id?: number; params?: { progressToken?: string } },
      );
    expect(messages.at(-1)).toMatchObject({ id: 3 });
    const progress = messages.filter((m) => m.method === 'notifications/progress');
    expect(progress.length).toBe(2);
    expect(progress[0]?.params?.progressToken).toBe('p-1');
  });

  it('answers a batch of two requests on one SSE stream with both responses', async () => {
    const res = await rawMcp(url(), {
      key: ADMIN_TOKEN,
      sessionId,
      headers: { 'mcp-protocol-version': '2025-03-26' },
      body: [
        {
          jsonrpc: '2.0',
          id: 4,
          method: 'tools/call',
          params: { name: 'echo', arguments: { message: 'a' } },
        },
        { jsonrpc: '2.0', id: 5, method: 'ping' },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const ids = res.text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => (JSON.parse(l.slice(6)) as { id: number }).id)
      .sort();
    expect(ids).toEqual([4, 5]);
  });

  it('refuses what the transport must: Accept (406), Content-Type (415), protocol version (400), re-initialize (400)', async () => {
    const call = { jsonrpc: '2.0', id: 6, method: 'ping' };
    const accept = await rawMcp(url(), {
      key: ADMIN_TOKEN,
      sessionId,
      body: call,
      headers: { accept: 'application/json' },
    });
    expect(accept.status).toBe(406);
    expect(accept.json.error.message).toMatch(/Not Acceptable/);
    const type = await rawMcp(url(), {
      key: ADMIN_TOKEN,
      sessionId,
      body: call,
      headers: { 'content-type': 'text/plain' },
    });
    expect(type.status).toBe(415);
    const version = await rawMcp(url(), {
      key: ADMIN_TOKEN,
      sessionId,
      body: call,
      headers: { 'mcp-protocol-version': '1999-01-01' },
    });
    expect(version.status).toBe(400);
    expect(version.json.error.message).toMatch(/Unsupported protocol version: 1999-01-01/);
    const again = await rawMcp(url(), { key: ADMIN_TOKEN, sessionId, body: initializeRequest(7) });
    expect(again.status).toBe(400);
    expect(again.json.error.message).toMatch(/already initialized/);
    // The session still works after every refusal.
    const ping = await rawMcp(url(), { key: ADMIN_TOKEN, sessionId, body: call });
    expect(ping.json).toMatchObject({ id: 6, result: {} });
  });
});
