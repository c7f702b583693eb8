// Every upstream failure and policy denial on the MCP endpoints is logged with the request
// id (the X-Request-Id of the HTTP request that carried the message), the user, the server
// and the method, whichever way the failure comes back: answered by the upstream, timed out
// in the gateway, or refused by policy before reaching the upstream.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/src/platform/logging/logger.ts';
import { startServer, type RunningServer } from '../../server/src/runtime.ts';
import { testConfig } from '../support/config.ts';
import { everythingStdio, initializeRequest, rawMcp } from '../support/mcp.ts';
import { ADMIN_TOKEN, api, createUserKey, grant } from '../support/server.ts';

const lines: Record<string, unknown>[] = [];
const destination = new Writable({
  write(chunk, _enc, cb) {
    for (const l of String(chunk).split('\n').filter(Boolean))
      lines.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  },
});

let server: RunningServer;
let user: Awaited<ReturnType<typeof createUserKey>>;
let sessionId: string;
const url = () => `${server.url}/mcp/every`;

beforeAll(async () => {
  server = await startServer(
    testConfig({
      ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
      GATEWAY_REQUEST_TIMEOUT_MS: '1500',
      AUDIT_FLUSH_INTERVAL_MS: '20',
    }),
    createLogger({ level: 'info', name: 'test', destination }),
  );
  const admin = api(server.url, ADMIN_TOKEN);
  const created = await admin.post('/api/servers', everythingStdio('every'));
  expect(created.status).toBe(201);
  user = await createUserKey(server, 'logged-user');
  // The user may call echo and the long-running tool, nothing else.
  await grant(admin, 'every', {
    subjectType: 'user',
    subject: user.user.id,
    tools: ['echo', 'trigger-long-running-operation'],
  });
  const init = await rawMcp(url(), { key: user.key, body: initializeRequest(1) });
  expect(init.status).toBe(200);
  sessionId = init.headers.get('mcp-session-id')!;
  await rawMcp(url(), {
    key: user.key,
    sessionId,
    body: { jsonrpc: '2.0', method: 'notifications/initialized' },
  });
});

afterAll(async () => {
  await server?.stop();
});

/** A tools/call carried by an HTTP request with our own request id. */
async function callTool(requestId: string, id: number, name: string, args: Record<string, unknown> = {}) {
  return rawMcp(url(), {
    key: user.key,
    sessionId,
    headers: { 'x-request-id': requestId },
    body: { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } },
  });
}

async function logged(msg: string, requestId: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const found = lines.find((l) => l['msg'] === msg && l['requestId'] === requestId);
    if (found) return found;
    if (Date.now() > deadline) {
      throw new Error(`no "${msg}" log line for ${requestId}; got ${JSON.stringify(lines.slice(-20))}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('MCP failure logs', () => {
  it('log a policy denial with request id, user, server, method and tool', async () => {
    const res = await callTool('req-denied-1', 2, 'get-sum', { a: 1, b: 2 });
    expect(res.status).toBe(200);
    expect(res.json.error.code).toBe(-32003);
    expect(await logged('MCP request denied', 'req-denied-1')).toMatchObject({
      level: 'info',
      userId: user.user.id,
      server: 'every',
      method: 'tools/call',
      tool: 'get-sum',
      sessionId,
      outcome: 'denied',
    });
  });

  it('log an error the upstream answered (stdio, outside the HTTP request) with its request id', async () => {
    // Arguments the tool's schema refuses: the upstream answers with a tool error.
    const res = await callTool('req-upstream-2', 3, 'echo', { message: 42 });
    expect(res.status).toBe(200);
    const entry = await logged('MCP tool returned an error', 'req-upstream-2');
    expect(entry).toMatchObject({
      userId: user.user.id,
      server: 'every',
      method: 'tools/call',
      tool: 'echo',
      outcome: 'tool_error',
    });
  });

  it('log a request the upstream did not answer in time as a warning', async () => {
    const res = await callTool('req-timeout-3', 4, 'trigger-long-running-operation', {
      duration: 5,
      steps: 5,
    });
    expect(res.status).toBe(200);
    expect(res.json.error.message).toMatch(/did not answer tools\/call within 1500 ms/);
    expect(await logged('MCP request failed', 'req-timeout-3')).toMatchObject({
      level: 'warn',
      userId: user.user.id,
      server: 'every',
      method: 'tools/call',
      tool: 'trigger-long-running-operation',
      outcome: 'timeout',
    });
  });

  it('never log arguments or results', () => {
    const mcpLines = lines.filter((l) => String(l['msg']).startsWith('MCP '));
    expect(mcpLines.length).toBeGreaterThanOrEqual(3);
    for (const l of mcpLines) {
      expect(l).not.toHaveProperty('arguments');
      expect(l).not.toHaveProperty('result');
    }
  });
});
