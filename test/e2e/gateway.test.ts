// The per-server endpoint `/mcp/{slug}` end to end: the SDK's real Client, through the
// in-process gateway, to real MCP servers from npm (server-everything over stdio and over
// Streamable HTTP, server-memory over stdio). Every MCP feature must pass through unchanged.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  McpError,
  CallToolResultSchema,
  type CallToolResult,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  type ConnectOptions,
  type EverythingHttp,
  type McpConnection,
} from '../support/mcp.ts';
import { createUserKey, useServer } from '../support/server.ts';
import { REQUIREMENTS } from './requirements.ts';

const ctx = useServer('pglite', NO_RATE_LIMITS);
const open: McpConnection[] = [];
const upstreams: EverythingHttp[] = [];
let user: Awaited<ReturnType<typeof createUserKey>>;

beforeAll(async () => {
  const everythingHttp = await startEverythingHttp();
  upstreams.push(everythingHttp);
  await Promise.all([
    registerServer(ctx.admin, everythingStdio('every-stdio')),
    registerServer(ctx.admin, remoteHttp('every-http', everythingHttp.url)),
  ]);
  user = await createUserKey(ctx.server, 'user');
});

afterAll(async () => {
  await Promise.allSettled(open.splice(0).map((c) => c.close()));
  await Promise.allSettled(upstreams.map((u) => u.stop()));
});

async function connect(slug: string, key = user.key, options?: ConnectOptions): Promise<McpConnection> {
  const c = await connectMcp(`${ctx.server.url}/mcp/${slug}`, key, options);
  open.push(c);
  return c;
}

describe.each([
  { kind: 'stdio', slug: 'every-stdio' },
  { kind: 'Streamable HTTP', slug: 'every-http' },
])('/mcp/{slug} to server-everything over $kind', ({ slug }) => {
  let c: McpConnection;
  beforeAll(async () => {
    c = await connect(slug);
  });

  it('initialize relays the upstream server info and capabilities', () => {
    expect(c.transport.sessionId).toBeTruthy();
    expect(c.client.getServerVersion()?.name).toBe('mcp-servers/everything');
    expect(c.client.getServerCapabilities()).toMatchObject({
      tools: {},
      resources: { subscribe: true },
      prompts: {},
      logging: {},
      completions: {},
    });
  });

  it('tools/list includes the tools the upstream registers for the client capabilities', async () => {
    const names = (await c.client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'echo',
        'get-sum',
        'get-env',
        'get-tiny-image',
        'get-resource-reference',
        'trigger-long-running-operation',
        'toggle-simulated-logging',
        'toggle-subscriber-updates',
        'gzip-file-as-resource',
        // Registered after notifications/initialized, only because the client declared
        // sampling, elicitation and roots: proves the upstream saw the client's capabilities.
        'trigger-sampling-request',
        'trigger-elicitation-request',
        'get-roots-list',
      ]),
    );
  });

  it('tools/call returns text results, and invalid arguments as an isError result', async () => {
    expect(text(await c.client.callTool({ name: 'echo', arguments: { message: 'hello gateway' } }))).toBe(
      'Echo: hello gateway',
    );
    expect(text(await c.client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } }))).toBe(
      'The sum of 2 and 40 is 42.',
    );
    const bad = (await c.client.callTool({ name: 'get-sum', arguments: { a: 'x', b: 1 } })) as CallToolResult;
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/^MCP error -32602: Input validation error/);
  });

  it("an unknown tool gets the upstream's error result, an unknown method a JSON-RPC error", async () => {
    const unknownTool = (await c.client.callTool({ name: 'no-such-tool', arguments: {} })) as CallToolResult;
    expect(unknownTool.isError).toBe(true);
    expect(text(unknownTool)).toBe('MCP error -32602: Tool no-such-tool not found');
    const err: unknown = await c.client
      .request({ method: 'no/such-method', params: {} }, CallToolResultSchema)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(-32601);
  });

  it('large messages (1 MB each way) pass through', async () => {
    const big = 'x'.repeat(1024 * 1024);
    expect(text(await c.client.callTool({ name: 'echo', arguments: { message: big } }))).toBe(`Echo: ${big}`);
  });

  it('image content passes through (get-tiny-image)', async () => {
    const r = (await c.client.callTool({ name: 'get-tiny-image', arguments: {} })) as CallToolResult;
    const image = r.content.find((b) => b.type === 'image');
    expect(image).toMatchObject({ type: 'image', mimeType: 'image/png' });
    const png = Buffer.from((image as { data: string }).data, 'base64');
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });

  it('embedded resource content passes through (get-resource-reference)', async () => {
    const r = (await c.client.callTool({
      name: 'get-resource-reference',
      arguments: { resourceType: 'Text', resourceId: 3 },
    })) as CallToolResult;
    const embedded = r.content.find((b) => b.type === 'resource');
    expect(embedded).toMatchObject({ type: 'resource', resource: { uri: 'demo://resource/dynamic/text/3' } });
    expect((embedded as { resource: { text: string } }).resource.text).toMatch(
      /^Resource 3: This is a plaintext resource/,
    );
  });

  it('progress notifications reach onprogress in order, before the result', async () => {
    const seen: string[] = [];
    const progress: Progress[] = [];
    const result = await c.client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
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
    const started = Date.now();
    const call = c.client.callTool(
      // Steps 500 ms apart: the client's cancel reaches the gateway before the next progress
      // is due even on a loaded machine (at 100 ms it sometimes did not), and the wait below
      // spans a step, so a progress the gateway failed to drop would still arrive.
      { name: 'trigger-long-running-operation', arguments: { duration: 10, steps: 20 } },
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
    expect(Date.now() - started).toBeLessThan(3_000);
    // server-everything keeps looping after a cancel; none of that may reach the client
    // (the SDK client reports progress for an unknown token as an error).
    await new Promise((r) => setTimeout(r, 800));
    expect(progress).toHaveLength(1);
    expect(c.events.errors.slice(errorsBefore).map((e) => e.message)).toEqual([]);
    expect(text(await c.client.callTool({ name: 'echo', arguments: { message: 'after cancel' } }))).toBe(
      'Echo: after cancel',
    );
  });

  it('logging: setLoggingLevel, then simulated log messages reach the client', async () => {
    await c.client.setLoggingLevel('debug');
    const before = c.events.logs.length;
    expect(text(await c.client.callTool({ name: 'toggle-simulated-logging', arguments: {} }))).toMatch(
      /^Started simulated/,
    );
    const log = await waitFor(
      () => c.events.logs.slice(before).find((l) => /-level message|level-message/.test(String(l.data))),
      'a simulated log message',
    );
    expect(['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency']).toContain(
      log.level,
    );
    expect(text(await c.client.callTool({ name: 'toggle-simulated-logging', arguments: {} }))).toMatch(
      /^Stopped/,
    );
  });

  it('resources: list, templates and read; an unknown resource is a JSON-RPC error', async () => {
    const { resources } = await c.client.listResources();
    expect(resources.map((r) => r.uri)).toContain('demo://resource/static/document/features.md');
    const { resourceTemplates } = await c.client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toContain(
      'demo://resource/dynamic/text/{resourceId}',
    );
    const read = await c.client.readResource({ uri: 'demo://resource/dynamic/text/1' });
    expect(read.contents[0]).toMatchObject({ uri: 'demo://resource/dynamic/text/1' });
    expect((read.contents[0] as { text: string }).text).toMatch(/^Resource 1:/);
    const err: unknown = await c.client
      .readResource({ uri: 'demo://resource/dynamic/text/0' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).message).toMatch(/Unknown resource/);
  });

  it('resources/subscribe: updates for the subscribed URI reach the client', async () => {
    const uri = 'demo://resource/dynamic/text/7';
    await c.client.subscribeResource({ uri });
    expect(text(await c.client.callTool({ name: 'toggle-subscriber-updates', arguments: {} }))).toMatch(
      /^Started/,
    );
    await waitFor(() => c.events.resourceUpdates.includes(uri), 'notifications/resources/updated');
    expect(text(await c.client.callTool({ name: 'toggle-subscriber-updates', arguments: {} }))).toMatch(
      /^Stopped/,
    );
    await c.client.unsubscribeResource({ uri });
  });

  it('resources/list_changed reaches the client when gzip-file-as-resource adds a resource', async () => {
    const before = c.events.resourceListChanged;
    const data = `data:text/plain;base64,${Buffer.from('hello '.repeat(100)).toString('base64')}`;
    const r = (await c.client.callTool({
      name: 'gzip-file-as-resource',
      arguments: { name: 'per-server.gz', data },
    })) as CallToolResult;
    expect(r.content[0]).toMatchObject({
      type: 'resource_link',
      uri: 'demo://resource/session/per-server.gz',
    });
    await waitFor(() => c.events.resourceListChanged > before, 'notifications/resources/list_changed');
    const { resources } = await c.client.listResources();
    expect(resources.map((x) => x.uri)).toContain('demo://resource/session/per-server.gz');
    const read = await c.client.readResource({ uri: 'demo://resource/session/per-server.gz' });
    expect(read.contents[0]).toMatchObject({ mimeType: 'application/gzip' });
  });

  it('prompts: list and get', async () => {
    const { prompts } = await c.client.listPrompts();
    expect(prompts.map((p) => p.name).sort()).toEqual([
      'args-prompt',
      'completable-prompt',
      'resource-prompt',
      'simple-prompt',
    ]);
    const args = await c.client.getPrompt({ name: 'args-prompt', arguments: { city: 'Paris', state: 'TX' } });
    expect(args.messages[0]!.content).toEqual({ type: 'text', text: "What's weather in Paris, TX?" });
    const res = await c.client.getPrompt({
      name: 'resource-prompt',
      arguments: { resourceType: 'Blob', resourceId: '2' },
    });
    expect(res.messages[1]!.content).toMatchObject({
      type: 'resource',
      resource: { uri: 'demo://resource/dynamic/blob/2' },
    });
  });

  it('completion: prompt arguments (with context) and resource template variables', async () => {
    const dept = await c.client.complete({
      ref: { type: 'ref/prompt', name: 'completable-prompt' },
      argument: { name: 'department', value: 'E' },
    });
    expect(dept.completion.values).toEqual(['Engineering']);
    const names = await c.client.complete({
      ref: { type: 'ref/prompt', name: 'completable-prompt' },
      argument: { name: 'name', value: '' },
      context: { arguments: { department: 'Sales' } },
    });
    expect(names.completion.values).toEqual(['David', 'Eve', 'Frank']);
    const tpl = await c.client.complete({
      ref: { type: 'ref/resource', uri: 'demo://resource/dynamic/text/{resourceId}' },
      argument: { name: 'resourceId', value: '12' },
    });
    expect(tpl.completion.values).toEqual(['12']);
  });

  it("sampling: the upstream's sampling/createMessage is answered by the client", async () => {
    const r = await c.client.callTool({
      name: 'trigger-sampling-request',
      arguments: { prompt: 'what is a gateway?', maxTokens: 20 },
    });
    const request = c.events.samplingRequests.at(-1);
    expect(request).toMatchObject({ maxTokens: 20, systemPrompt: 'You are a helpful test server.' });
    expect(JSON.stringify(request?.messages)).toContain('what is a gateway?');
    expect(text(r)).toContain('sampled-by-test-client');
    expect(text(r)).toContain(SAMPLED.model);
  });

  it("elicitation: the upstream's elicitation/create is answered by the client", async () => {
    const r = (await c.client.callTool({
      name: 'trigger-elicitation-request',
      arguments: {},
    })) as CallToolResult;
    expect(c.events.elicitations.at(-1)?.message).toBe('Please provide inputs for the following fields:');
    expect(text(r, 0)).toContain('User provided the requested information');
    expect(text(r, 1)).toContain('- Name: Ada Lovelace');
  });

  it("roots: the upstream's roots/list is answered by the client; list_changed triggers a re-fetch", async () => {
    const r = await c.client.callTool({ name: 'get-roots-list', arguments: {} });
    expect(text(r)).toContain(ROOTS[0]!.name);
    expect(c.events.rootsRequests).toBeGreaterThanOrEqual(1);
    const before = c.events.rootsRequests;
    await c.client.sendRootsListChanged();
    await waitFor(() => c.events.rootsRequests > before, 'a new roots/list request');
  });

  it('concurrent calls on one session each get their own result', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2
          ? c.client.callTool({ name: 'get-sum', arguments: { a: i, b: 1000 } })
          : c.client.callTool({ name: 'echo', arguments: { message: `m${i}` } }),
      ),
    );
    results.forEach((r, i) =>
      expect(text(r)).toBe(i % 2 ? `The sum of ${i} and 1000 is ${i + 1000}.` : `Echo: m${i}`),
    );
  });

  it('ping is answered', async () => {
    await expect(c.client.ping()).resolves.toBeDefined();
  });

  it('tools/call is audited with the method, tool, server, user and status', async () => {
    const since = new Date();
    await c.client.callTool({ name: 'echo', arguments: { message: 'audit me' } });
    const event = await waitForAudit(
      ctx.admin,
      since,
      (e) => e.toolName === 'echo' && e.status === 'ok',
      `tools/call echo on ${slug}`,
      { category: 'mcp', action: 'tools/call', server: slug },
    );
    expect(event).toMatchObject({
      category: 'mcp',
      action: 'tools/call',
      serverSlug: slug,
      userId: user.user.id,
    });
  });

  it('no protocol errors reached the client during the session', () => {
    expect(c.events.errors.map((e) => e.message)).toEqual([]);
  });
});

describe('server-memory over stdio', () => {
  it('create_entities then read_graph round-trips through /mcp/{slug}', async () => {
    await registerServer(ctx.admin, memoryStdio('memory', path.join(tempDir(), 'memory.jsonl')));
    const c = await connect('memory');
    const entity = { name: 'gateway-e2e', entityType: 'test', observations: ['relayed by the gateway'] };
    const created = (await c.client.callTool({
      name: 'create_entities',
      arguments: { entities: [entity] },
    })) as CallToolResult;
    expect(created.isError).toBeFalsy();
    const graph = (await c.client.callTool({ name: 'read_graph', arguments: {} })) as CallToolResult;
    expect(graph.structuredContent).toEqual({ entities: [entity], relations: [] });
    // A second session (its own process) reads the graph the first one wrote.
    const second = await connect('memory');
    const again = (await second.client.callTool({ name: 'read_graph', arguments: {} })) as CallToolResult;
    expect(again.structuredContent).toEqual({ entities: [entity], relations: [] });
  });
});

describe('credentials', () => {
  it('two users on the same stdio server each see only their own credential', async () => {
    await registerServer(
      ctx.admin,
      everythingStdio('every-creds', {
        credentialFields: [{ name: 'USER_SECRET', kind: 'env', secret: true, required: true }],
      }),
    );
    const alice = await createUserKey(ctx.server, 'alice');
    const bob = await createUserKey(ctx.server, 'bob');
    const put = async (who: typeof alice, value: string) => {
      const res = await who.client.put('/api/servers/every-creds/credentials', {
        values: { USER_SECRET: value },
      });
      expect(res.status).toBe(200);
    };
    await put(alice, 'alice-secret-value');
    await put(bob, 'bob-secret-value');
    const [a, b] = await Promise.all([connect('every-creds', alice.key), connect('every-creds', bob.key)]);
    const envOf = async (conn: McpConnection) =>
      text(await conn.client.callTool({ name: 'get-env', arguments: {} }));
    const [envA, envB] = await Promise.all([envOf(a), envOf(b)]);
    expect(JSON.parse(envA)).toMatchObject({ USER_SECRET: 'alice-secret-value' });
    expect(JSON.parse(envB)).toMatchObject({ USER_SECRET: 'bob-secret-value' });
    expect(envA).not.toContain('bob-secret-value');
    expect(envB).not.toContain('alice-secret-value');
    // The gateway's own secrets never reach an upstream process.
    for (const env of [envA, envB]) {
      expect(env).not.toContain(alice.key);
      expect(env).not.toContain(bob.key);
    }
  });
});

describe('upstream failure', () => {
  it('an upstream killed mid-call fails the call with a JSON-RPC error; after a restart the session works again', async () => {
    const first = await startEverythingHttp();
    upstreams.push(first);
    await registerServer(ctx.admin, remoteHttp('every-crash', first.url));
    const c = await connect('every-crash');
    expect(text(await c.client.callTool({ name: 'echo', arguments: { message: 'before' } }))).toBe(
      'Echo: before',
    );

    const since = new Date();
    let killedAt = 0;
    const err: unknown = await c.client
      .callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 10, steps: 10 } },
        undefined,
        {
          timeout: 20_000,
          onprogress: () => {
            if (killedAt) return;
            killedAt = Date.now();
            void first.stop();
          },
        },
      )
      .then(
        () => new Error('the call succeeded although its upstream was killed'),
        (e: unknown) => e,
      );
    expect(killedAt).toBeGreaterThan(0);
    expect(err).toBeInstanceOf(McpError);
    // Not the client's own timeout: the gateway noticed the upstream died and said so.
    expect(Date.now() - killedAt).toBeLessThan(5_000);
    await waitForAudit(
      ctx.admin,
      since,
      (e) => e.toolName === 'trigger-long-running-operation' && e.status === 'error',
      'the failed tools/call',
      { category: 'mcp', action: 'tools/call', server: 'every-crash' },
    );

    const second = await startEverythingHttp(first.port);
    upstreams.push(second);
    expect(text(await c.client.callTool({ name: 'echo', arguments: { message: 'after' } }))).toBe(
      'Echo: after',
    );
  });
});

describe('requirements', () => {
  const here = path.dirname(fileURLToPath(import.meta.url));

  /** Titles of the tests a file declares (`it`/`test`, including runIf/skipIf/each; never skip/todo). */
  function testTitles(file: string): Set<string> {
    const source = ts.createSourceFile(
      file,
      readFileSync(path.join(here, file), 'utf8'),
      ts.ScriptTarget.Latest,
    );
    const titles = new Set<string>();
    const isTest = (e: ts.Expression): boolean => {
      const base = (x: ts.Expression) => ts.isIdentifier(x) && (x.text === 'it' || x.text === 'test');
      if (base(e)) return true;
      if (ts.isPropertyAccessExpression(e))
        return base(e.expression) && ['only', 'concurrent', 'fails'].includes(e.name.text);
      if (ts.isCallExpression(e) && ts.isPropertyAccessExpression(e.expression)) {
        return (
          base(e.expression.expression) && ['runIf', 'skipIf', 'each', 'for'].includes(e.expression.name.text)
        );
      }
      return false;
    };
    const visit = (node: ts.Node) => {
      if (ts.isCallExpression(node) && isTest(node.expression)) {
        const first = node.arguments[0];
        if (first && ts.isStringLiteralLike(first)) titles.add(first.text);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
    return titles;
  }

  it('every gateway requirement names an existing test', () => {
    expect(REQUIREMENTS.length).toBeGreaterThan(0);
    const ids = REQUIREMENTS.map((r) => r.id);
    expect(new Set(ids).size, 'requirement ids are unique').toBe(ids.length);
    const titles = new Map<string, Set<string>>();
    const missing = REQUIREMENTS.filter((r) => {
      if (!titles.has(r.file)) titles.set(r.file, testTitles(r.file));
      return !titles.get(r.file)!.has(r.test);
    }).map((r) => `${r.id}: "${r.test}" in ${r.file}`);
    expect(missing).toEqual([]);
  });
});
