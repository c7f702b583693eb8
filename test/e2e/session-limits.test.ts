// Limits on what MCP sessions may hold: open sessions per user and in total, upstream stdio
// processes per user and in total (an aggregate session counts one per stdio server it
// reaches). Over a user's limit: 429; over the process's: 503; both a JSON-RPC error and an
// audit event. Real server-everything upstreams (one stdio, one Streamable HTTP).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  everythingStdio,
  initializeRequest,
  NO_RATE_LIMITS,
  rawMcp,
  registerServer,
  remoteHttp,
  startEverythingHttp,
  waitForAudit,
  type EverythingHttp,
} from '../support/mcp.ts';
import { createUserKey, useServer } from '../support/server.ts';

const ctx = useServer('pglite', {
  ...NO_RATE_LIMITS,
  GATEWAY_STDIO_POOL_SIZE: '0',
  GATEWAY_MAX_SESSIONS_PER_USER: '2',
  GATEWAY_MAX_SESSIONS: '4',
  GATEWAY_MAX_STDIO_PER_USER: '1',
  GATEWAY_MAX_STDIO: '2',
});
let upstream: EverythingHttp;

/** Opens a session with a raw initialize; resolves to the HTTP status, the session id and the body. */
async function initialize(path: string, key: string) {
  const res = await rawMcp(`${ctx.server.url}${path}`, { key, body: initializeRequest() });
  return { status: res.status, sessionId: res.headers.get('mcp-session-id') ?? undefined, json: res.json };
}

async function end(path: string, key: string, sessionId: string | undefined) {
  const res = await rawMcp(`${ctx.server.url}${path}`, { method: 'DELETE', key, sessionId });
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  upstream = await startEverythingHttp();
  await registerServer(ctx.admin, remoteHttp('remote', upstream.url));
  await registerServer(ctx.admin, everythingStdio('local'));
});

afterAll(async () => {
  await upstream?.stop();
});

describe('session and process limits', () => {
  it('refuses a user past their own limits with 429, and everyone past the totals with 503', async () => {
    const alice = await createUserKey(ctx.server, 'alice-limits');
    const bob = await createUserKey(ctx.server, 'bob-limits');
    const carol = await createUserKey(ctx.server, 'carol-limits');
    const since = new Date();

    const stdio = await initialize('/mcp/local', alice.key);
    expect(stdio.status).toBe(200);
    // One stdio process per user: a second stdio session, or an aggregate session (which
    // starts one for `local`), is refused; a remote server's session is not.
    const second = await initialize('/mcp/local', alice.key);
    expect(second.status).toBe(429);
    expect(second.json.error.message).toContain('upstream processes');
    expect((await initialize('/mcp', alice.key)).status).toBe(429);
    expect((await initialize('/mcp/remote', alice.key)).status).toBe(200);
    // Two sessions per user.
    const third = await initialize('/mcp/remote', alice.key);
    expect(third.status).toBe(429);
    expect(third.json.error.message).toContain('open MCP sessions');
    await waitForAudit(
      ctx.admin,
      since,
      (e) => e.action === 'mcp.refused' && e.userId === alice.user.id && e.status === 'denied',
      "alice's refusal",
    );

    // Two stdio processes in total: bob's one fills them, carol's is refused with 503.
    const bobs = await initialize('/mcp/local', bob.key);
    expect(bobs.status).toBe(200);
    const carols = await initialize('/mcp/local', carol.key);
    expect(carols.status).toBe(503);
    // Four sessions in total: bob's second fills them.
    expect((await initialize('/mcp/remote', bob.key)).status).toBe(200);
    expect((await initialize('/mcp/remote', carol.key)).status).toBe(503);
    await waitForAudit(
      ctx.admin,
      since,
      (e) => e.action === 'mcp.refused' && e.userId === carol.user.id,
      "carol's refusal",
    );

    // Ending a session frees its place (and its process).
    await end('/mcp/local', alice.key, stdio.sessionId);
    expect((await initialize('/mcp/local', carol.key)).status).toBe(200);
  });
});
