// Authorization is live: every request of every open session (/mcp/{slug}, /mcp, and the
// chat's in-process sessions) is decided with the user's current role and the current rules,
// for every method, and a change that takes access away ends or trims the sessions it
// affects. Rules can name tools, prompts and resources; what a rule does not name is neither
// listed nor served. Real server-everything upstream, the SDK's real Client.
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  connectMcp,
  NO_RATE_LIMITS,
  rawMcp,
  remoteHttp,
  startEverythingHttp,
  text,
  waitFor,
  waitForAudit,
  type EverythingHttp,
  type McpConnection,
} from '../support/mcp.ts';
import { useServer } from '../support/server.ts';

const ctx = useServer('pglite', NO_RATE_LIMITS);
let upstream: EverythingHttp;
const open: Array<{ close(): Promise<void> }> = [];

const DOC = 'demo://resource/static/document/features.md';
const FORBIDDEN = -32003;

/** A user of the given role with an unscoped API key (the same path a sign-in takes). */
async function person(name: string, role: 'admin' | 'user') {
  const user = await ctx.server.services.users.upsertBySubject({
    subject: `test|${name}`,
    displayName: name,
    role,
  });
  const created = await ctx.server.services.keys.create(
    { userId: user.id, displayName: name, role, via: 'api_key' },
    { name: `${name}-key` },
  );
  return { user, key: created.key };
}

async function rule(body: Record<string, unknown>): Promise<string> {
  const res = await ctx.admin.post('/api/access-rules', body);
  if (res.status !== 201) throw new Error(`rule: ${res.status} ${JSON.stringify(res.body)}`);
  return (res.body as { id: string }).id;
}

async function connect(path: string, key: string): Promise<McpConnection> {
  const c = await connectMcp(`${ctx.server.url}${path}`, key);
  open.push(c);
  return c;
}

/** The JSON-RPC error code a call failed with (or 'ok' when it did not fail). */
async function codeOf(p: Promise<unknown>): Promise<number | string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof McpError) return err.code;
    return (err as Error).message;
  }
}

beforeAll(async () => {
  upstream = await startEverythingHttp();
  // Both slugs reach the same upstream; `adm` has no rule (admins only), `pub` gets rules per test.
  for (const slug of ['adm', 'pub']) {
    const res = await ctx.admin.post('/api/servers', remoteHttp(slug, upstream.url));
    if (res.status !== 201) throw new Error(`register ${slug}: ${res.status} ${JSON.stringify(res.body)}`);
  }
});

afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((c) => c.close()));
  for (const r of (await ctx.admin.get('/api/access-rules')).body.rules as Array<{ id: string }>)
    await ctx.admin.delete(`/api/access-rules/${r.id}`);
});

afterAll(async () => {
  await upstream?.stop();
});

describe('live authorization', () => {
  it('an admin demoted to user loses admin-only servers on sessions already open', async () => {
    const { user, key } = await person('demoted', 'admin');
    const own = await connect('/mcp/adm', key);
    const agg = await connect('/mcp', key);
    expect(text(await own.client.callTool({ name: 'echo', arguments: { message: 'hi' } }))).toContain('hi');
    expect((await agg.client.listTools()).tools.map((t) => t.name)).toContain('adm__echo');

    const since = new Date();
    const res = await ctx.admin.patch(`/api/users/${user.id}`, { role: 'user' });
    expect(res.status).toBe(200);
    await ctx.server.services.gateway.settled();

    // /mcp/{slug}: the session is closed; its id is unknown now (404), so the client re-initializes.
    const raw = await rawMcp(`${ctx.server.url}/mcp/adm`, {
      key,
      sessionId: own.transport.sessionId,
      body: { jsonrpc: '2.0', id: 9, method: 'tools/list' },
    });
    expect(raw.status).toBe(404);
    await waitForAudit(
      ctx.admin,
      since,
      (e) => e.action === 'mcp.session_closed' && e.userId === user.id && e.serverSlug === 'adm',
      'the closed session',
    );
    // /mcp: the server is gone from every list and refused for every method.
    await waitFor(() => agg.events.toolListChanged > 0, 'tools/list_changed');
    expect((await agg.client.listTools()).tools.map((t) => t.name)).not.toContain('adm__echo');
    expect(await codeOf(agg.client.callTool({ name: 'adm__echo', arguments: { message: 'x' } }))).not.toBe(
      'ok',
    );
    expect(await codeOf(agg.client.readResource({ uri: `gw+adm:${DOC}` }))).not.toBe('ok');
    expect(await codeOf(agg.client.getPrompt({ name: 'adm__simple-prompt' }))).not.toBe('ok');
  });

  it('a deleted rule ends the per-server session and trims the aggregate one, every method', async () => {
    const { user, key } = await person('trimmed', 'user');
    const id = await rule({ subjectType: 'user', subject: user.id, server: 'pub' });
    const own = await connect('/mcp/pub', key);
    const agg = await connect('/mcp', key);
    expect((await agg.client.readResource({ uri: `gw+pub:${DOC}` })).contents).toHaveLength(1);
    expect((await agg.client.getPrompt({ name: 'pub__simple-prompt' })).messages.length).toBeGreaterThan(0);
    expect((await own.client.listResources()).resources.length).toBeGreaterThan(0);

    expect((await ctx.admin.delete(`/api/access-rules/${id}`)).status).toBe(204);
    await ctx.server.services.gateway.settled();

    await waitFor(
      () => agg.events.toolListChanged && agg.events.promptListChanged && agg.events.resourceListChanged,
      'list_changed for tools, prompts and resources',
    );
    expect((await agg.client.listResources()).resources).toEqual([]);
    expect((await agg.client.listResourceTemplates()).resourceTemplates).toEqual([]);
    expect((await agg.client.listPrompts()).prompts).toEqual([]);
    expect(await codeOf(agg.client.readResource({ uri: `gw+pub:${DOC}` }))).not.toBe('ok');
    expect(await codeOf(agg.client.getPrompt({ name: 'pub__simple-prompt' }))).not.toBe('ok');
    expect(await codeOf(agg.client.subscribeResource({ uri: `gw+pub:${DOC}` }))).not.toBe('ok');
    expect(await codeOf(own.client.listResources())).not.toBe('ok');
    expect(await codeOf(own.client.readResource({ uri: DOC }))).not.toBe('ok');
  });

  it('a rule narrowed while the server stays usable makes both endpoints list again', async () => {
    const { user, key } = await person('narrowed', 'user');
    const whole = await rule({ subjectType: 'user', subject: user.id, server: 'pub' });
    const own = await connect('/mcp/pub', key);
    const agg = await connect('/mcp', key);
    expect((await own.client.listTools()).tools.length).toBeGreaterThan(1);
    // Let the notifications of start-up settle, then count from here.
    await new Promise((r) => setTimeout(r, 300));
    const before = { own: own.events.toolListChanged, agg: agg.events.toolListChanged };

    await rule({ subjectType: 'user', subject: user.id, server: 'pub', tools: ['echo'] });
    expect((await ctx.admin.delete(`/api/access-rules/${whole}`)).status).toBe(204);
    await ctx.server.services.gateway.settled();

    await waitFor(
      () => own.events.toolListChanged > before.own && agg.events.toolListChanged > before.agg,
      'tools/list_changed on /mcp/pub and /mcp',
    );
    expect((await own.client.listTools()).tools.map((t) => t.name)).toEqual(['echo']);
    expect((await agg.client.listTools()).tools.map((t) => t.name)).toEqual(['pub__echo']);
    expect(await codeOf(own.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }))).toBe(FORBIDDEN);
  });

  it("the chat's in-process sessions are re-checked too", async () => {
    const { user } = await person('chatter', 'user');
    const id = await rule({ subjectType: 'user', subject: user.id, server: 'pub' });
    const { client } = await ctx.server.services.gateway.connectInProcess(
      { principal: { userId: user.id, displayName: 'chatter', role: 'user', via: 'session' } },
      { name: 'chat-test', version: '1.0.0' },
    );
    open.push(client);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('pub__echo');
    await ctx.admin.delete(`/api/access-rules/${id}`);
    await ctx.server.services.gateway.settled();
    expect((await client.listTools()).tools).toEqual([]);
    expect((await client.listPrompts()).prompts).toEqual([]);
    expect(await codeOf(client.callTool({ name: 'pub__echo', arguments: { message: 'x' } }))).not.toBe('ok');
    expect(await codeOf(client.readResource({ uri: `gw+pub:${DOC}` }))).not.toBe('ok');
  });
});

describe('rules that name tools, prompts and resources', () => {
  it('a tool-limited rule hides and refuses every other tool, prompt and resource, on both endpoints', async () => {
    const { user, key } = await person('tool-limited', 'user');
    await rule({ subjectType: 'user', subject: user.id, server: 'pub', tools: ['echo'] });
    const own = await connect('/mcp/pub', key);
    expect((await own.client.listTools()).tools.map((t) => t.name)).toEqual(['echo']);
    expect((await own.client.listPrompts()).prompts).toEqual([]);
    expect((await own.client.listResources()).resources).toEqual([]);
    expect((await own.client.listResourceTemplates()).resourceTemplates).toEqual([]);
    expect(await codeOf(own.client.readResource({ uri: DOC }))).toBe(FORBIDDEN);
    expect(await codeOf(own.client.getPrompt({ name: 'simple-prompt' }))).toBe(FORBIDDEN);
    expect(await codeOf(own.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }))).toBe(FORBIDDEN);
    expect(
      await codeOf(
        own.client.complete({
          ref: { type: 'ref/prompt', name: 'completable-prompt' },
          argument: { name: 'department', value: 'E' },
        }),
      ),
    ).toBe(FORBIDDEN);

    const agg = await connect('/mcp', key);
    expect((await agg.client.listTools()).tools.map((t) => t.name)).toEqual(['pub__echo']);
    expect((await agg.client.listPrompts()).prompts).toEqual([]);
    expect((await agg.client.listResources()).resources).toEqual([]);
    expect(await codeOf(agg.client.readResource({ uri: `gw+pub:${DOC}` }))).toBe(FORBIDDEN);
    expect(await codeOf(agg.client.getPrompt({ name: 'pub__simple-prompt' }))).toBe(FORBIDDEN);
  });

  it('prompts and resource prefixes grant just those', async () => {
    const { user, key } = await person('reader', 'user');
    await rule({
      subjectType: 'user',
      subject: user.id,
      server: 'pub',
      prompts: ['simple-prompt'],
      resources: ['demo://resource/static/document/*'],
    });
    const own = await connect('/mcp/pub', key);
    expect((await own.client.listTools()).tools).toEqual([]);
    expect((await own.client.listPrompts()).prompts.map((p) => p.name)).toEqual(['simple-prompt']);
    const uris = (await own.client.listResources()).resources.map((r) => r.uri);
    expect(uris).toContain(DOC);
    expect(uris.every((u) => u.startsWith('demo://resource/static/document/'))).toBe(true);
    expect((await own.client.listResourceTemplates()).resourceTemplates).toEqual([]);
    expect((await own.client.readResource({ uri: DOC })).contents).toHaveLength(1);
    expect(await codeOf(own.client.readResource({ uri: 'demo://resource/dynamic/text/1' }))).toBe(FORBIDDEN);
    expect(await codeOf(own.client.callTool({ name: 'echo', arguments: { message: 'x' } }))).toBe(FORBIDDEN);
  });

  it('a rule naming a tool or prompt the server does not have is refused, naming the field', async () => {
    const res = await ctx.admin.post('/api/access-rules', {
      subjectType: 'everyone',
      server: 'pub',
      tools: ['echo', 'no-such-tool'],
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('body.tools[1]');
    const prompts = await ctx.admin.post('/api/access-rules', {
      subjectType: 'everyone',
      server: 'pub',
      prompts: ['nope'],
    });
    expect(prompts.status).toBe(400);
    expect(prompts.body.error.message).toContain('body.prompts[0]');
  });
});
