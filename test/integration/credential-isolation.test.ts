import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../server/src/core/principal.ts';
import { everythingStdio, text } from '../support/mcp.ts';
import { createUserKey, grant, useServer } from '../support/server.ts';

/** What the upstream process sees as USER_TOKEN when the gateway connects for this context. */
async function tokenSeenUpstream(
  ctx: ReturnType<typeof useServer>,
  slug: string,
  principal: Principal,
  threadId?: string,
): Promise<string | undefined> {
  const server = await ctx.server.services.registry.require(slug);
  const { transport } = await ctx.server.services.gateway.connectUpstream(
    server,
    { principal, threadId },
    undefined,
    {
      pooled: false,
    },
  );
  const client = new Client({ name: 'isolation', version: '1' });
  try {
    await client.connect(transport);
    const env = text(await client.callTool({ name: 'get-env', arguments: {} }));
    return /"USER_TOKEN":\s*"([^"]*)"/.exec(env)?.[1];
  } finally {
    await client.close();
  }
}

describe('credential scopes and isolation', () => {
  const ctx = useServer();
  const field = [{ name: 'USER_TOKEN', kind: 'env', secret: true, required: true }];

  it('a thread uses its own credential, then the user’s; a thread-isolated server uses only the thread’s', async () => {
    for (const [slug, threadIsolated] of [
      ['shared-creds', false],
      ['isolated-creds', true],
    ] as const) {
      expect(
        (
          await ctx.admin.post(
            '/api/servers',
            everythingStdio(slug, { credentialFields: field, threadIsolated }),
          )
        ).status,
      ).toBe(201);
      await grant(ctx.admin, slug);
    }
    const a = await createUserKey(ctx.server, 'alice-t');
    const principal: Principal = { userId: a.user.id, displayName: 'alice-t', role: 'user', via: 'api_key' };
    const t1 = (await a.client.post('/api/threads', { title: 'T1' })).body.id as string;
    const t2 = (await a.client.post('/api/threads', { title: 'T2' })).body.id as string;
    // A thread-scoped credential is only for a thread of the caller's own.
    expect(
      (
        await a.client.put('/api/servers/shared-creds/credentials', {
          values: { USER_TOKEN: 'x' },
          threadId: randomUUID(),
        })
      ).status,
    ).toBe(404);
    for (const slug of ['shared-creds', 'isolated-creds']) {
      expect(
        (
          await a.client.put(`/api/servers/${slug}/credentials`, {
            values: { USER_TOKEN: 'alice-user-wide' },
          })
        ).status,
      ).toBe(200);
      expect(
        (
          await a.client.put(`/api/servers/${slug}/credentials`, {
            values: { USER_TOKEN: 'alice-thread-1' },
            threadId: t1,
          })
        ).status,
      ).toBe(200);
    }
    expect(await tokenSeenUpstream(ctx, 'shared-creds', principal)).toBe('alice-user-wide');
    expect(await tokenSeenUpstream(ctx, 'shared-creds', principal, t1)).toBe('alice-thread-1');
    // T1's credential is never used in T2: T2 falls back to the user's own...
    expect(await tokenSeenUpstream(ctx, 'shared-creds', principal, t2)).toBe('alice-user-wide');
    // ...except on a thread-isolated server, where T2 has none at all.
    expect(await tokenSeenUpstream(ctx, 'isolated-creds', principal, t1)).toBe('alice-thread-1');
    await expect(tokenSeenUpstream(ctx, 'isolated-creds', principal, t2)).rejects.toThrow(
      /no credentials stored/,
    );

    const listed = (await a.client.get('/api/credentials')).body.credentials as {
      serverSlug: string;
      threadId: string | null;
    }[];
    expect(
      listed
        .filter((c) => c.serverSlug === 'shared-creds')
        .map((c) => c.threadId)
        .sort(),
    ).toEqual([t1, null].sort());

    // Deleting T1 deletes its credentials with it; the user's own stay.
    expect((await a.client.delete(`/api/threads/${t1}`)).status).toBe(204);
    const after = (await a.client.get('/api/credentials')).body.credentials as { threadId: string | null }[];
    expect(after.map((c) => c.threadId)).toEqual([null, null]);
    expect(await tokenSeenUpstream(ctx, 'shared-creds', principal, t1)).toBe('alice-user-wide');
  });

  it('user B can neither use, read, list nor overwrite user A’s credentials', async () => {
    const a = await createUserKey(ctx.server, 'alice-b');
    const b = await createUserKey(ctx.server, 'bob-b');
    await a.client.put('/api/servers/shared-creds/credentials', {
      values: { USER_TOKEN: 'alice-only-secret' },
    });
    // A's thread is not B's to store credentials for, nor to read or delete.
    const thread = (await a.client.post('/api/threads', {})).body.id as string;
    expect(
      (
        await b.client.put('/api/servers/shared-creds/credentials', {
          values: { USER_TOKEN: 'bob-in-alice-thread' },
          threadId: thread,
        })
      ).status,
    ).toBe(404);
    expect((await b.client.get(`/api/threads/${thread}`)).status).toBe(404);
    expect((await b.client.delete(`/api/threads/${thread}`)).status).toBe(404);
    // B's listing is empty; B's write creates B's own record and leaves A's alone.
    expect((await b.client.get('/api/credentials')).body.credentials).toEqual([]);
    expect(
      (await b.client.put('/api/servers/shared-creds/credentials', { values: { USER_TOKEN: 'bob-secret' } }))
        .status,
    ).toBe(200);
    const pa: Principal = { userId: a.user.id, displayName: 'a', role: 'user', via: 'api_key' };
    const pb: Principal = { userId: b.user.id, displayName: 'b', role: 'user', via: 'api_key' };
    expect(await tokenSeenUpstream(ctx, 'shared-creds', pa)).toBe('alice-only-secret');
    expect(await tokenSeenUpstream(ctx, 'shared-creds', pb)).toBe('bob-secret');
    // B deleting "their" credential deletes only theirs.
    expect((await b.client.delete('/api/servers/shared-creds/credentials')).status).toBe(204);
    expect(await tokenSeenUpstream(ctx, 'shared-creds', pa)).toBe('alice-only-secret');
    await expect(tokenSeenUpstream(ctx, 'shared-creds', pb)).rejects.toThrow(/no credentials stored/);
    // Nothing about A's values is in B's reach: no API returns values, and audit is admin-only.
    expect(JSON.stringify((await a.client.get('/api/credentials')).body)).not.toContain('alice-only-secret');
    expect((await b.client.get(`/api/audit?userId=${a.user.id}`)).status).toBe(403);
  });

  it('deleting a user deletes their credentials', async () => {
    const c = await createUserKey(ctx.server, 'carol-del');
    await c.client.put('/api/servers/shared-creds/credentials', { values: { USER_TOKEN: 'carol-secret' } });
    const before = await ctx.server.core.database.db.execute(
      `select count(*)::int as n from credentials where user_id = '${c.user.id}'` as never,
    );
    expect((before as unknown as { rows: { n: number }[] }).rows[0]!.n).toBe(1);
    await ctx.server.core.database.db.execute(`delete from users where id = '${c.user.id}'` as never);
    const after = await ctx.server.core.database.db.execute(
      `select count(*)::int as n from credentials where user_id = '${c.user.id}'` as never,
    );
    expect((after as unknown as { rows: { n: number }[] }).rows[0]!.n).toBe(0);
  });
});
