import { describe, expect, it } from 'vitest';
import { scrub } from '../../server/src/features/gateway/gateway.audit.ts';
import { connectMcp, everythingStdio, text } from '../support/mcp.ts';
import { createUserKey, grant, useServer } from '../support/server.ts';

describe('secrets never reach the audit trail', () => {
  const ctx = useServer();

  it('scrubs secret values wherever they appear in a JSON value', () => {
    expect(scrub({ a: 'x hunter2-secret y', b: ['hunter2-secret'] }, ['hunter2-secret'])).toEqual({
      a: 'x [redacted] y',
      b: ['[redacted]'],
    });
    expect(scrub({ q: 'has "quotes" secret"value' }, ['secret"value'])).toEqual({
      q: 'has "quotes" [redacted]',
    });
    const same = { a: 1 };
    expect(scrub(same, ['nothing-here'])).toBe(same);
  });

  it("a tool that echoes the user's credential and the server's static secret is recorded without them", async () => {
    const res = await ctx.admin.post(
      '/api/servers',
      everythingStdio('envy', {
        transport: {
          type: 'stdio',
          command: process.execPath,
          args: [(everythingStdio('x').transport as { args: string[] }).args[0]!, 'stdio'],
          env: { STATIC_TOKEN: 'static-secret-0042' },
        },
        credentialFields: [{ name: 'USER_TOKEN', kind: 'env', secret: true }],
      }),
    );
    expect(res.status).toBe(201);
    await grant(ctx.admin, 'envy');
    const { client, key } = await createUserKey(ctx.server, 'envy-user');
    expect(
      (await client.put('/api/servers/envy/credentials', { values: { USER_TOKEN: 'user-secret-0099' } }))
        .status,
    ).toBe(200);
    const mcp = await connectMcp(`${ctx.server.url}/mcp/envy`, key);
    try {
      const env = text(await mcp.client.callTool({ name: 'get-env', arguments: {} }));
      // The upstream did get both values...
      expect(env).toContain('user-secret-0099');
      expect(env).toContain('static-secret-0042');
    } finally {
      await mcp.close();
    }
    // ...and the audit trail does not.
    await new Promise((r) => setTimeout(r, 300));
    const events = (await ctx.admin.get('/api/audit?server=envy&limit=500')).body.events as unknown[];
    const dump = JSON.stringify(events);
    expect(dump).toContain('get-env');
    expect(dump).toContain('[redacted]');
    expect(dump).not.toContain('user-secret-0099');
    expect(dump).not.toContain('static-secret-0042');
  });
});
