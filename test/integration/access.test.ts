import { describe, expect, it } from 'vitest';
import { connectMcp, everythingStdio } from '../support/mcp.ts';
import { createUserKey, grant, useServer } from '../support/server.ts';

describe('access rules', () => {
  const ctx = useServer();

  async function setup() {
    for (const slug of ['tools-a', 'tools-b']) {
      const res = await ctx.admin.post('/api/servers', everythingStdio(slug));
      if (res.status !== 201 && res.status !== 409) throw new Error(JSON.stringify(res.body));
    }
  }

  it('validates rules, naming the field, and changes nothing on bad input', async () => {
    await setup();
    const before = (await ctx.admin.get('/api/access-rules')).body.rules.length;
    const cases: [Record<string, unknown>, string][] = [
      [{ subjectType: 'team', server: 'tools-a' }, 'body.subjectType'],
      [{ subjectType: 'group', server: 'tools-a' }, 'body.subject'],
      [{ subjectType: 'user', subject: 'not-a-uuid', server: 'tools-a' }, 'body.subject'],
      [{ subjectType: 'everyone', subject: 'x', server: 'tools-a' }, 'body.subject'],
      [{ subjectType: 'everyone', server: 'nope' }, 'body.server'],
      [
        { subjectType: 'user', subject: '00000000-0000-4000-8000-000000000000', server: 'tools-a' },
        'body.subject',
      ],
      [{ subjectType: 'everyone', server: 'tools-a', tools: [] }, 'body.tools'],
    ];
    for (const [body, path] of cases) {
      const res = await ctx.admin.post('/api/access-rules', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.issues.map((i: { path: string }) => i.path)).toContain(path);
    }
    expect((await ctx.admin.get('/api/access-rules')).body.rules.length).toBe(before);
  });

  it('a user without a rule sees no server, on REST and on both MCP endpoints', async () => {
    await setup();
    const { client, key } = await createUserKey(ctx.server, 'norule');
    expect((await client.get('/api/servers')).body.servers).toEqual([]);
    expect((await client.get('/api/servers/tools-a')).status).toBe(404);
    const res = await fetch(`${ctx.server.url}/mcp/tools-a`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });
    expect(res.status).toBe(404);
    // The same answer as for a server that does not exist: nothing is revealed.
    const missing = await fetch(`${ctx.server.url}/mcp/does-not-exist`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: '{}',
    });
    expect(missing.status).toBe(404);
    expect(await res.json()).toEqual(
      expect.objectContaining({ error: expect.objectContaining({ message: 'no MCP server tools-a' }) }),
    );
    const aggregate = await connectMcp(`${ctx.server.url}/mcp`, key);
    try {
      expect((await aggregate.client.listTools()).tools).toEqual([]);
    } finally {
      await aggregate.close();
    }
  });

  it('a tool-restricted user sees and calls only the granted tools, on both endpoints; a group rule applies to members', async () => {
    await setup();
    const { user, key, client: limited } = await createUserKey(ctx.server, 'limited');
    await grant(ctx.admin, 'tools-a', { subjectType: 'user', subject: user.id, tools: ['echo'] });
    const direct = await connectMcp(`${ctx.server.url}/mcp/tools-a`, key);
    try {
      expect((await direct.client.listTools()).tools.map((t) => t.name)).toEqual(['echo']);
      expect(await direct.client.callTool({ name: 'echo', arguments: { message: 'ok' } })).toMatchObject({
        content: [{ type: 'text', text: 'Echo: ok' }],
      });
      await expect(direct.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })).rejects.toThrow(
        /not allowed/,
      );
    } finally {
      await direct.close();
    }
    const agg = await connectMcp(`${ctx.server.url}/mcp`, key);
    try {
      expect((await agg.client.listTools()).tools.map((t) => t.name)).toEqual(['tools-a__echo']);
      await expect(
        agg.client.callTool({ name: 'tools-a__get-sum', arguments: { a: 1, b: 2 } }),
      ).rejects.toThrow(/not allowed/);
      await expect(
        agg.client.callTool({ name: 'tools-b__echo', arguments: { message: 'x' } }),
      ).rejects.toThrow();
    } finally {
      await agg.close();
    }
    // The catalog shows the same: only granted tools.
    const catalog = await limited.get('/api/servers/tools-a');
    expect(catalog.body.capabilities.tools.map((t: { name: string }) => t.name)).toEqual(['echo']);
    const denied = await ctx.admin.get('/api/audit?status=denied&action=tools/call');
    expect(denied.body.events.some((e: { toolName: string }) => e.toolName === 'get-sum')).toBe(true);

    // Group rules: a member of "ops" gets tools-b.
    await ctx.server.services.users.upsertBySubject({
      subject: 'test|opsy',
      displayName: 'opsy',
      role: 'user',
      groups: ['ops'],
    });
    const opsy = await createUserKey(ctx.server, 'opsy');
    await grant(ctx.admin, 'tools-b', { subjectType: 'group', subject: 'ops' });
    // Rules apply at once in this process (no restart, no re-login).
    const list = await opsy.client.get('/api/servers');
    expect(list.body.servers.map((s: { slug: string }) => s.slug)).toEqual(['tools-b']);
  });

  it('non-admins cannot manage rules, servers or other users’ keys and grants', async () => {
    await setup();
    const { client } = await createUserKey(ctx.server, 'mallory');
    const rule = await grant(ctx.admin, 'tools-a');
    expect((await client.get('/api/access-rules')).status).toBe(403);
    expect(
      (await client.post('/api/access-rules', { subjectType: 'everyone', server: 'tools-b' })).status,
    ).toBe(403);
    expect((await client.delete(`/api/access-rules/${rule.id}`)).status).toBe(403);
    expect((await client.patch('/api/servers/tools-a', { enabled: false })).status).toBe(403);
    expect((await client.get('/api/oauth/grants?all=true')).status).toBe(403);
    expect((await client.delete('/api/oauth/grants/some-grant-id')).status).toBe(404);
    expect((await client.get('/api/audit')).status).toBe(403);
    expect((await client.get('/api/users')).status).toBe(403);
    const users = await ctx.admin.get('/api/users');
    expect(users.body.users.map((u: { displayName: string }) => u.displayName)).toContain('mallory');
    expect((await ctx.admin.delete(`/api/access-rules/${rule.id}`)).status).toBe(204);
    expect((await ctx.admin.delete(`/api/access-rules/${rule.id}`)).status).toBe(404);
  });
});
