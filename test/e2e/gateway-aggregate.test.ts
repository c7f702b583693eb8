// The aggregate endpoint `/mcp` end to end: one session over every server the caller may
// use. Tools and prompts are `{slug}__{name}`, resource URIs and templates `gw+{slug}:{uri}`;
// every MCP feature must still reach the right upstream and come back under the mapped name.
import path from 'node:path';
import { McpError, type CallToolResult, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../server/src/platform/version.ts';
import { tempDir } from '../support/config.ts';
import {
  connectMcp,
  everythingStdio,
  memoryStdio,
  NO_RATE_LIMITS,
  registerServer,
  remoteHttp,
  ROOTS,
  SAMPLED,
  startEverythingHttp,
  text,
  waitFor,
  waitForAudit,
  type EverythingHttp,
  type McpConnection,
} from '../support/mcp.ts';
import { createUserKey, useServer } from '../support/server.ts';

const ctx = useServer('pglite', NO_RATE_LIMITS);
const open: McpConnection[] = [];
const upstreams: EverythingHttp[] = [];
let user: Awaited<ReturnType<typeof createUserKey>>;

/** The servers `user` may use: both server-everything transports and server-memory. */
const SLUGS = ['every-stdio', 'every-http', 'memory'];

beforeAll(async () => {
  const everythingHttp = await startEverythingHttp();
  upstreams.push(everythingHttp);
  await Promise.all([
    registerServer(ctx.admin, everythingStdio('every-stdio')),
    registerServer(ctx.admin, remoteHttp('every-http', everythingHttp.url)),
    registerServer(ctx.admin, memoryStdio('memory', path.join(tempDir(), 'memory.jsonl'))),
  ]);
  user = await createUserKey(ctx.server, 'user', SLUGS);
});

afterAll(async () => {
  await Promise.allSettled(open.splice(0).map((c) => c.close()));
  await Promise.allSettled(upstreams.map((u) => u.stop()));
});

async function connectAggregate(key = user.key): Promise<McpConnection> {
  const c = await connectMcp(`${ctx.server.url}/mcp`, key);
  open.push(c);
  return c;
}

describe('the aggregate endpoint /mcp', () => {
  let c: McpConnection;
  beforeAll(async () => {
    c = await connectAggregate();
  });

  it('initialize is answered by the gateway itself', () => {
    expect(c.transport.sessionId).toBeTruthy();
    expect(c.client.getServerVersion()).toMatchObject({ name: 'mcp-gateway', version: VERSION });
    expect(c.client.getServerCapabilities()).toMatchObject({ tools: {}, resources: {}, prompts: {} });
  });

  it('tools/list merges every server the caller may use under {slug}__{name}', async () => {
    const { tools } = await c.client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'every-stdio__echo',
        'every-http__echo',
        'every-stdio__get-tiny-image',
        'every-http__trigger-long-running-operation',
        'memory__create_entities',
        'memory__read_graph',
      ]),
    );
    for (const name of names)
      expect(
        SLUGS.some((s) => name.startsWith(`${s}__`)),
        name,
      ).toBe(true);
    // Only the name changes: descriptions and schemas are the upstream's.
    const echo = tools.find((t) => t.name === 'every-http__echo');
    expect(echo?.inputSchema).toMatchObject({ type: 'object', properties: { message: {} } });
  });

  it('resources and resource templates are listed under gw+{slug}: URIs', async () => {
    const { resources } = await c.client.listResources();
    const uris = resources.map((r) => r.uri);
    expect(uris).toEqual(
      expect.arrayContaining([
        'gw+every-stdio:demo://resource/static/document/features.md',
        'gw+every-http:demo://resource/static/document/features.md',
      ]),
    );
    for (const uri of uris) expect(uri, uri).toMatch(/^gw\+(every-stdio|every-http|memory):/);
    const { resourceTemplates } = await c.client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toEqual(
      expect.arrayContaining([
        'gw+every-stdio:demo://resource/dynamic/text/{resourceId}',
        'gw+every-http:demo://resource/dynamic/text/{resourceId}',
      ]),
    );
  });

  it('prompts are listed under {slug}__{name}', async () => {
    const { prompts } = await c.client.listPrompts();
    expect(prompts.map((p) => p.name)).toEqual(
      expect.arrayContaining([
        'every-stdio__simple-prompt',
        'every-stdio__completable-prompt',
        'every-http__args-prompt',
        'every-http__resource-prompt',
      ]),
    );
    for (const p of prompts)
      expect(
        SLUGS.some((s) => p.name.startsWith(`${s}__`)),
        p.name,
      ).toBe(true);
  });

  it('a tool name that names no server is a JSON-RPC error (-32602)', async () => {
    for (const name of ['no-such-server__echo', 'echo']) {
      const err: unknown = await c.client
        .callTool({ name, arguments: { message: 'x' } })
        .catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(McpError);
      expect((err as McpError).code, name).toBe(-32602);
    }
    // The session is unharmed.
    expect(text(await c.client.callTool({ name: 'every-stdio__echo', arguments: { message: 'ok' } }))).toBe(
      'Echo: ok',
    );
  });

  it('server-memory: create_entities then read_graph round-trips through /mcp', async () => {
    const entity = { name: 'aggregate-e2e', entityType: 'test', observations: ['via /mcp'] };
    const created = (await c.client.callTool({
      name: 'memory__create_entities',
      arguments: { entities: [entity] },
    })) as CallToolResult;
    expect(created.isError).toBeFalsy();
    const graph = (await c.client.callTool({ name: 'memory__read_graph', arguments: {} })) as CallToolResult;
    expect(graph.structuredContent).toEqual({ entities: [entity], relations: [] });
  });
});

describe.each([
  { kind: 'stdio', slug: 'every-stdio' },
  { kind: 'Streamable HTTP', slug: 'every-http' },
])('/mcp to server-everything over $kind', ({ slug }) => {
  const tool = (name: string) => `${slug}__${name}`;
  const uri = (original: string) => `gw+${slug}:${original}`;
  let c: McpConnection;
  beforeAll(async () => {
    c = await connectAggregate();
  });

  it('tools/call through {slug}__{name}: text results and isError results', async () => {
    expect(text(await c.client.callTool({ name: tool('echo'), arguments: { message: 'hello /mcp' } }))).toBe(
      'Echo: hello /mcp',
    );
    const bad = (await c.client.callTool({
      name: tool('get-sum'),
      arguments: { a: 'x', b: 1 },
    })) as CallToolResult;
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/^MCP error -32602: Input validation error/);
  });

  it('image content passes through (get-tiny-image)', async () => {
    const r = (await c.client.callTool({ name: tool('get-tiny-image'), arguments: {} })) as CallToolResult;
    const image = r.content.find((b) => b.type === 'image');
    expect(image).toMatchObject({ type: 'image', mimeType: 'image/png' });
    expect(
      Buffer.from((image as { data: string }).data, 'base64')
        .subarray(1, 4)
        .toString(),
    ).toBe('PNG');
  });

  it('embedded resource content passes through (get-resource-reference)', async () => {
    const r = (await c.client.callTool({
      name: tool('get-resource-reference'),
      arguments: { resourceType: 'Text', resourceId: 3 },
    })) as CallToolResult;
    const embedded = r.content.find((b) => b.type === 'resource') as
      { resource: { uri: string; text: string } } | undefined;
    expect(embedded?.resource.text).toMatch(/^Resource 3: This is a plaintext resource/);
    // Raw or mapped, the URI still names the upstream's resource.
    expect(embedded?.resource.uri).toMatch(/(^|:)demo:\/\/resource\/dynamic\/text\/3$/);
  });

  it('progress notifications reach onprogress in order, before the result', async () => {
    const seen: string[] = [];
    const progress: Progress[] = [];
    const result = await c.client.callTool(
      { name: tool('trigger-long-running-operation'), arguments: { duration: 0.3, steps: 3 } },
      undefined,
      {
        onprogress: (p) => {
          progress.push(p);
          seen.push(`progress ${p.progress}`);
        },
      },
    );
    seen.push('result');
    expect(text(result)).toMatch(/^Long running operation completed/);
    expect(progress.map((p) => [p.progress, p.total])).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
    expect(seen).toEqual(['progress 1', 'progress 2', 'progress 3', 'result']);
  });

  it('cancellation: an aborted call rejects, its late progress is dropped, the session keeps working', async () => {
    const controller = new AbortController();
    const progress: Progress[] = [];
    const errorsBefore = c.events.errors.length;
    const call = c.client.callTool(
      // Steps 500 ms apart, as in gateway.test.ts: the cancel arrives before the next progress.
      { name: tool('trigger-long-running-operation'), arguments: { duration: 10, steps: 20 } },
      undefined,
      {
        signal: controller.signal,
        onprogress: (p) => {
          progress.push(p);
          controller.abort(new Error('cancelled by the test'));
        },
      },
    );
    await expect(call).rejects.toThrow('cancelled by the test');
    await new Promise((r) => setTimeout(r, 800));
    expect(progress).toHaveLength(1);
    expect(c.events.errors.slice(errorsBefore).map((e) => e.message)).toEqual([]);
    expect(
      text(await c.client.callTool({ name: tool('echo'), arguments: { message: 'after cancel' } })),
    ).toBe('Echo: after cancel');
  });

  it('logging: setLoggingLevel, then simulated log messages reach the client', async () => {
    await c.client.setLoggingLevel('debug');
    const before = c.events.logs.length;
    expect(text(await c.client.callTool({ name: tool('toggle-simulated-logging'), arguments: {} }))).toMatch(
      /^Started simulated/,
    );
    await waitFor(
      () => c.events.logs.slice(before).find((l) => /-level message|level-message/.test(String(l.data))),
      'a simulated log message',
    );
    expect(text(await c.client.callTool({ name: tool('toggle-simulated-logging'), arguments: {} }))).toMatch(
      /^Stopped/,
    );
  });

  it('resources: read through the mapped URI; an unknown resource is a JSON-RPC error', async () => {
    const read = await c.client.readResource({ uri: uri('demo://resource/dynamic/text/1') });
    expect(read.contents[0]).toMatchObject({ uri: uri('demo://resource/dynamic/text/1') });
    expect((read.contents[0] as { text: string }).text).toMatch(/^Resource 1:/);
    const doc = await c.client.readResource({ uri: uri('demo://resource/static/document/features.md') });
    expect((doc.contents[0] as { text: string }).text.length).toBeGreaterThan(0);
    const err: unknown = await c.client
      .readResource({ uri: uri('demo://resource/dynamic/text/0') })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
  });

  it('resources/subscribe with a mapped URI: the update names the mapped URI', async () => {
    const original = 'demo://resource/dynamic/text/7';
    await c.client.subscribeResource({ uri: uri(original) });
    expect(text(await c.client.callTool({ name: tool('toggle-subscriber-updates'), arguments: {} }))).toMatch(
      /^Started/,
    );
    await waitFor(
      () => c.events.resourceUpdates.includes(uri(original)),
      `resources/updated for ${uri(original)}`,
    );
    expect(c.events.resourceUpdates).not.toContain(original);
    expect(text(await c.client.callTool({ name: tool('toggle-subscriber-updates'), arguments: {} }))).toMatch(
      /^Stopped/,
    );
    await c.client.unsubscribeResource({ uri: uri(original) });
  });

  it('resources/list_changed reaches the client; the new resource reads through its mapped URI', async () => {
    const before = c.events.resourceListChanged;
    const data = `data:text/plain;base64,${Buffer.from('hello '.repeat(100)).toString('base64')}`;
    const r = (await c.client.callTool({
      name: tool('gzip-file-as-resource'),
      arguments: { name: 'aggregate.gz', data },
    })) as CallToolResult;
    expect(r.isError).toBeFalsy();
    await waitFor(() => c.events.resourceListChanged > before, 'notifications/resources/list_changed');
    const read = await c.client.readResource({ uri: uri('demo://resource/session/aggregate.gz') });
    expect(read.contents[0]).toMatchObject({ mimeType: 'application/gzip' });
  });

  it('prompts/get through {slug}__{name}', async () => {
    const args = await c.client.getPrompt({
      name: tool('args-prompt'),
      arguments: { city: 'Paris', state: 'TX' },
    });
    expect(args.messages[0]!.content).toEqual({ type: 'text', text: "What's weather in Paris, TX?" });
    const res = await c.client.getPrompt({
      name: tool('resource-prompt'),
      arguments: { resourceType: 'Blob', resourceId: '2' },
    });
    expect(res.messages[1]!.content).toMatchObject({ type: 'resource' });
    expect((res.messages[1]!.content as { resource: { uri: string } }).resource.uri).toMatch(
      /(^|:)demo:\/\/resource\/dynamic\/blob\/2$/,
    );
  });

  it('completion: refs use the mapped prompt names and template URIs', async () => {
    const dept = await c.client.complete({
      ref: { type: 'ref/prompt', name: tool('completable-prompt') },
      argument: { name: 'department', value: 'E' },
    });
    expect(dept.completion.values).toEqual(['Engineering']);
    const names = await c.client.complete({
      ref: { type: 'ref/prompt', name: tool('completable-prompt') },
      argument: { name: 'name', value: '' },
      context: { arguments: { department: 'Sales' } },
    });
    expect(names.completion.values).toEqual(['David', 'Eve', 'Frank']);
    const tpl = await c.client.complete({
      ref: { type: 'ref/resource', uri: uri('demo://resource/dynamic/text/{resourceId}') },
      argument: { name: 'resourceId', value: '12' },
    });
    expect(tpl.completion.values).toEqual(['12']);
  });

  it("sampling: the upstream's sampling/createMessage is answered by the client", async () => {
    const r = await c.client.callTool({
      name: tool('trigger-sampling-request'),
      arguments: { prompt: 'what is an aggregate?', maxTokens: 20 },
    });
    expect(c.events.samplingRequests.at(-1)).toMatchObject({ maxTokens: 20 });
    expect(JSON.stringify(c.events.samplingRequests.at(-1)?.messages)).toContain('what is an aggregate?');
    expect(text(r)).toContain('sampled-by-test-client');
    expect(text(r)).toContain(SAMPLED.model);
  });

  it("elicitation: the upstream's elicitation/create is answered by the client", async () => {
    const r = (await c.client.callTool({
      name: tool('trigger-elicitation-request'),
      arguments: {},
    })) as CallToolResult;
    expect(c.events.elicitations.at(-1)?.message).toBe('Please provide inputs for the following fields:');
    expect(text(r, 1)).toContain('- Name: Ada Lovelace');
  });

  it("roots: the upstream's roots/list is answered with the client's roots", async () => {
    const r = await c.client.callTool({ name: tool('get-roots-list'), arguments: {} });
    expect(text(r)).toContain(ROOTS[0]!.name);
    expect(c.events.rootsRequests).toBeGreaterThanOrEqual(1);
  });

  it("tools/call is audited under the upstream server's slug", async () => {
    const since = new Date();
    await c.client.callTool({ name: tool('echo'), arguments: { message: 'audit me' } });
    const event = await waitForAudit(
      ctx.admin,
      since,
      (e) => e.status === 'ok' && /(^|__)echo$/.test(e.toolName ?? ''),
      `tools/call echo on ${slug} through /mcp`,
      { category: 'mcp', action: 'tools/call', server: slug },
    );
    expect(event).toMatchObject({ serverSlug: slug, userId: user.user.id });
  });

  it('no protocol errors reached the client during the session', () => {
    expect(c.events.errors.map((e) => e.message)).toEqual([]);
  });
});

describe('who sees what on /mcp', () => {
  it('a key scoped to one server sees only that server', async () => {
    const scoped = await createUserKey(ctx.server, 'scoped', ['every-http']);
    const c = await connectAggregate(scoped.key);
    const tools = (await c.client.listTools()).tools.map((t) => t.name);
    expect(tools).toContain('every-http__echo');
    expect(tools.filter((n) => !n.startsWith('every-http__'))).toEqual([]);
    const prompts = (await c.client.listPrompts()).prompts.map((p) => p.name);
    expect(prompts.filter((n) => !n.startsWith('every-http__'))).toEqual([]);
    const resources = (await c.client.listResources()).resources.map((r) => r.uri);
    expect(resources.filter((u) => !u.startsWith('gw+every-http:'))).toEqual([]);
    // Calling outside the scope is refused, not forwarded.
    const err: unknown = await c.client
      .callTool({ name: 'every-stdio__echo', arguments: { message: 'x' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
  });

  it('an upstream that is down is left out of the lists; the others still answer', async () => {
    const doomed = await startEverythingHttp();
    upstreams.push(doomed);
    await registerServer(ctx.admin, remoteHttp('every-gone', doomed.url));
    await doomed.stop();
    const key = await createUserKey(ctx.server, 'survivor', ['every-stdio', 'every-gone']);
    const started = Date.now();
    const c = await connectAggregate(key.key);
    const tools = (await c.client.listTools()).tools.map((t) => t.name);
    expect(tools).toContain('every-stdio__echo');
    expect(tools.filter((n) => n.startsWith('every-gone__'))).toEqual([]);
    const resources = (await c.client.listResources()).resources.map((r) => r.uri);
    expect(resources.filter((u) => u.startsWith('gw+every-gone:'))).toEqual([]);
    expect(resources.some((u) => u.startsWith('gw+every-stdio:'))).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(
      text(await c.client.callTool({ name: 'every-stdio__echo', arguments: { message: 'alive' } })),
    ).toBe('Echo: alive');
  });
});
