import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, api, createUserKey, grant, useServer } from '../support/server.ts';
import { engines } from '../support/database.ts';

const stdioServer = (slug: string, extra: Record<string, unknown> = {}) => ({
  slug,
  name: `Server ${slug}`,
  transport: {
    type: 'stdio',
    command: 'node',
    args: ['-e', 'setTimeout(()=>{},1)'],
    env: { STATIC_SECRET: 's3cr3t-static' },
  },
  credentialFields: [{ name: 'USER_TOKEN', kind: 'env', secret: true, required: true }],
  ...extra,
});

async function waitForAudit(admin: ReturnType<typeof api>, query: string, count = 1) {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const page = await admin.get(`/api/audit?${query}`);
    if (page.body.events.length >= count || Date.now() > deadline) return page.body.events;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(await engines())('REST API on %s', (engine) => {
  const ctx = useServer(engine);

  describe('authentication', () => {
    it('refuses requests without a key, with a challenge, and records the refusal', async () => {
      const res = await api(ctx.server.url).get('/api/servers');
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(res.body.error.code).toBe('unauthenticated');
      const bad = await api(ctx.server.url, 'mgw_this-is-not-a-real-key-000000000000000').get('/api/servers');
      expect(bad.status).toBe(401);
      expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"');
      const events = await waitForAudit(ctx.admin, 'action=auth.reject', 2);
      expect(events.length).toBeGreaterThanOrEqual(2);
      expect(JSON.stringify(events)).not.toContain('this-is-not-a-real-key');
    });

    it('accepts the bootstrap admin key', async () => {
      expect((await ctx.admin.get('/api/servers')).status).toBe(200);
    });
  });

  describe('servers', () => {
    it('creates a server, never showing static secret values', async () => {
      const res = await ctx.admin.post('/api/servers', { ...stdioServer('alpha'), enabled: false });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        slug: 'alpha',
        transport: { type: 'stdio', command: 'node', envNames: ['STATIC_SECRET'] },
        credentialFields: [{ name: 'USER_TOKEN', kind: 'env', secret: true, required: true }],
        enabled: false,
        source: 'api',
      });
      expect(JSON.stringify(res.body)).not.toContain('s3cr3t-static');
      const list = await ctx.admin.get('/api/servers');
      expect(JSON.stringify(list.body)).not.toContain('s3cr3t-static');
      // Sealed at rest too.
      const rows = await ctx.server.core.database.db.execute('select * from credentials' as never);
      expect(JSON.stringify(rows)).not.toContain('s3cr3t-static');
      const reg = await ctx.server.services.registry.require('alpha');
      expect(reg.resolvedTransport).toMatchObject({ env: { STATIC_SECRET: 's3cr3t-static' } });
    });

    it.each([
      [{ ...stdioServer('Bad Slug') }, 'body.slug'],
      [{ ...stdioServer('b1'), transport: { type: 'stdio' } }, 'body.transport.command'],
      [{ ...stdioServer('b2'), transport: { type: 'ftp', url: 'x' } }, 'body.transport.type'],
      [
        { ...stdioServer('b3'), credentialFields: [{ name: 'X-Key', kind: 'header' }] },
        'body.credentialFields.0.kind',
      ],
      [{ ...stdioServer('b4'), extra: 1 }, 'body'],
      [
        { slug: 'b5', name: 'r', transport: { type: 'streamable-http', url: 'https://169.254.169.254/mcp' } },
        'body.transport.url',
      ],
      [
        { slug: 'b6', name: 'r', transport: { type: 'streamable-http', url: 'ftp://example.com/mcp' } },
        'body.transport.url',
      ],
    ])('rejects an invalid definition naming the field (%#)', async (body, path) => {
      const res = await ctx.admin.post('/api/servers', body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(res.body.error.issues.map((i: { path: string }) => i.path)).toContain(path);
      const slugs = (await ctx.admin.get('/api/servers')).body.servers.map((s: { slug: string }) => s.slug);
      expect(slugs).not.toContain((body as { slug: string }).slug);
    });

    it('refuses a duplicate slug with 409 and leaves the first unchanged', async () => {
      await ctx.admin.post('/api/servers', { ...stdioServer('dup'), enabled: false });
      const res = await ctx.admin.post('/api/servers', {
        ...stdioServer('dup'),
        name: 'Other',
        enabled: false,
      });
      expect(res.status).toBe(409);
      expect((await ctx.admin.get('/api/servers/dup')).body.name).toBe('Server dup');
    });

    it('updates, disables and deletes', async () => {
      await ctx.admin.post('/api/servers', { ...stdioServer('beta'), enabled: false });
      const patched = await ctx.admin.patch('/api/servers/beta', {
        description: 'changed',
        sensitiveTools: ['rm'],
      });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ description: 'changed', sensitiveTools: ['rm'] });
      expect((await ctx.admin.patch('/api/servers/beta', {})).status).toBe(400);
      expect((await ctx.admin.patch('/api/servers/nope', { description: 'x' })).status).toBe(404);
      expect((await ctx.admin.delete('/api/servers/beta')).status).toBe(204);
      expect((await ctx.admin.get('/api/servers/beta')).status).toBe(404);
      const events = await waitForAudit(ctx.admin, 'server=beta&category=admin', 3);
      expect(events.map((e: { action: string }) => e.action)).toEqual(
        expect.arrayContaining(['server.delete', 'server.update']),
      );
    });

    it('lets only admins manage servers; users see enabled servers only', async () => {
      await ctx.admin.post('/api/servers', { ...stdioServer('gamma'), enabled: false });
      const { client } = await createUserKey(ctx.server, 'carol');
      expect((await client.post('/api/servers', stdioServer('mine'))).status).toBe(403);
      expect((await client.patch('/api/servers/gamma', { name: 'x' })).status).toBe(403);
      expect((await client.delete('/api/servers/gamma')).status).toBe(403);
      expect((await client.get('/api/servers/gamma')).status).toBe(404);
      const list = await client.get('/api/servers');
      expect(list.body.servers.map((s: { slug: string }) => s.slug)).not.toContain('gamma');
    });
  });

  describe('user credentials', () => {
    it('stores values for declared fields only, and lists names never values', async () => {
      await ctx.admin.post('/api/servers', { ...stdioServer('creds'), enabled: true });
      await grant(ctx.admin, 'creds');
      const { client } = await createUserKey(ctx.server, 'dave');
      const bad = await client.put('/api/servers/creds/credentials', { values: { NOPE: 'x' } });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toContain('NOPE');
      const missing = await client.put('/api/servers/creds/credentials', { values: {} });
      expect(missing.status).toBe(400);
      expect(missing.body.error.issues[0].path).toBe('body.values.USER_TOKEN');
      const ok = await client.put('/api/servers/creds/credentials', {
        values: { USER_TOKEN: 'dave-secret-1' },
      });
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject({ serverSlug: 'creds', fields: ['USER_TOKEN'], threadId: null });
      const list = await client.get('/api/credentials');
      expect(list.body.credentials).toHaveLength(1);
      expect(JSON.stringify(list.body)).not.toContain('dave-secret-1');
      expect((await client.delete('/api/servers/creds/credentials')).status).toBe(204);
      expect((await client.delete('/api/servers/creds/credentials')).status).toBe(404);
    });
  });

  describe('API keys', () => {
    it('shows a key once, stores only its hash, and revokes it', async () => {
      const { client } = await createUserKey(ctx.server, 'erin');
      const created = await client.post('/api/keys', { name: 'laptop' });
      expect(created.status).toBe(201);
      expect(created.body.key).toMatch(/^mgw_[A-Za-z0-9_-]{43}$/);
      const key = created.body.key as string;
      const listed = await client.get('/api/keys');
      expect(JSON.stringify(listed.body)).not.toContain(key);
      expect(listed.body.keys.map((k: { name: string }) => k.name)).toContain('laptop');
      const rows = await ctx.server.core.database.db.execute('select * from api_keys' as never);
      expect(JSON.stringify(rows)).not.toContain(key);

      const own = api(ctx.server.url, key);
      expect((await own.get('/api/keys')).status).toBe(200);
      expect((await client.delete(`/api/keys/${created.body.id}`)).status).toBe(200);
      expect((await own.get('/api/keys')).status).toBe(401);
      expect((await client.delete(`/api/keys/${created.body.id}`)).status).toBe(409);
    });

    it('refuses a key scoped to a server the caller cannot see, naming the field, and stores nothing', async () => {
      const { client } = await createUserKey(ctx.server, 'scoped-typo');
      const before = (await client.get('/api/keys')).body.keys.length as number;
      const res = await client.post('/api/keys', { name: 'typo', servers: ['nosuch'] });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({
        code: 'validation_failed',
        issues: [{ path: 'body.servers[0]', message: 'no server nosuch' }],
      });
      expect((await client.get('/api/keys')).body.keys.length).toBe(before);
    });

    it('refuses expired keys and past expiry dates', async () => {
      const { client, user } = await createUserKey(ctx.server, 'frank');
      expect(
        (await client.post('/api/keys', { name: 'old', expiresAt: '2001-01-01T00:00:00Z' })).status,
      ).toBe(400);
      const soon = await ctx.server.services.keys.create(
        { userId: user.id, displayName: 'frank', role: 'user', via: 'api_key' },
        { name: 'soon', expiresAt: new Date(Date.now() + 300).toISOString() },
      );
      await new Promise((r) => setTimeout(r, 400));
      const res = await api(ctx.server.url, soon.key).get('/api/keys');
      expect(res.status).toBe(401);
      expect(res.body.error.message).toContain('expired');
    });

    it("never lets a user see or revoke another user's key", async () => {
      const a = await createUserKey(ctx.server, 'gina');
      const b = await createUserKey(ctx.server, 'hank');
      const aKey = await a.client.post('/api/keys', { name: 'a' });
      expect((await b.client.delete(`/api/keys/${aKey.body.id}`)).status).toBe(404);
      expect((await b.client.get('/api/keys?all=true')).status).toBe(403);
      const bList = await b.client.get('/api/keys');
      expect(bList.body.keys.every((k: { userId: string }) => k.userId === b.user.id)).toBe(true);
      const all = await ctx.admin.get('/api/keys?all=true');
      expect(all.body.keys.map((k: { id: string }) => k.id)).toContain(aKey.body.id);
    });

    it('a server-scoped key cannot list, create or revoke keys, not even within its own scope', async () => {
      const full = await createUserKey(ctx.server, 'ivy');
      const { client } = await createUserKey(ctx.server, 'ivy', ['alpha']);
      const other = await full.client.post('/api/keys', { name: 'other' });
      expect(other.status).toBe(201);

      for (const res of [
        await client.post('/api/keys', { name: 'wider' }),
        await client.post('/api/keys', { name: 'same', servers: ['alpha'] }),
        await client.get('/api/keys'),
        await client.delete(`/api/keys/${other.body.id}`),
      ]) {
        expect(res.status).toBe(403);
        expect(res.body.error.code).toBe('forbidden');
        expect(res.body.error.message).toContain('unrestricted credential');
      }
      // Nothing changed: the other key still stands, and an unrestricted key manages keys.
      const listed = await full.client.get('/api/keys');
      expect(listed.status).toBe(200);
      const names = listed.body.keys.map((k: { name: string }) => k.name);
      expect(names).toContain('other');
      expect(names).not.toContain('wider');
      expect(names).not.toContain('same');
      expect(listed.body.keys.find((k: { id: string }) => k.id === other.body.id).revokedAt).toBeNull();
      expect((await full.client.delete(`/api/keys/${other.body.id}`)).status).toBe(200);
    });

    it('a server-scoped admin key cannot become a web session through local sign-in', async () => {
      const root = await ctx.server.services.users.upsertBySubject({
        subject: 'test|scoped-root',
        displayName: 'scoped-root',
        role: 'admin',
      });
      const scoped = await ctx.server.services.keys.create(
        { userId: root.id, displayName: 'scoped-root', role: 'admin', via: 'api_key' },
        { name: 'scoped-admin', servers: ['alpha'] },
      );
      /** The local sign-in form, then its POST with the form's CSRF token and cookie. */
      const signIn = async (token: string) => {
        const page = await fetch(`${ctx.server.url}/auth/login`);
        const cookie = page.headers
          .getSetCookie()
          .map((c) => c.split(';')[0])
          .join('; ');
        const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1] ?? '';
        const res = await fetch(`${ctx.server.url}/auth/local`, {
          method: 'POST',
          redirect: 'manual',
          headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token, _csrf: csrf, returnTo: '/' }).toString(),
        });
        // The browser's jar: a cookie set again by the sign-in replaces the form's.
        const jar = new Map(
          [...cookie.split('; '), ...res.headers.getSetCookie().map((c) => c.split(';')[0]!)]
            .filter(Boolean)
            .map((c) => [c.slice(0, c.indexOf('=')), c] as const),
        );
        const after = [...jar.values()].join('; ');
        const me = await fetch(`${ctx.server.url}/api/me`, { headers: { cookie: after } });
        return { status: res.status, page: await res.text(), signedIn: me.status === 200 };
      };
      const refused = await signIn(scoped.key);
      expect(refused.status).toBe(401);
      expect(refused.page).toContain('not an unrestricted admin API key');
      expect(refused.signedIn).toBe(false);
      // The unrestricted bootstrap key signs in on the same form.
      expect(await signIn(ADMIN_TOKEN)).toMatchObject({ status: 303, signedIn: true });
    });
  });

  describe('audit', () => {
    it('is readable by admins only, filtered and paginated by cursor', async () => {
      const { client } = await createUserKey(ctx.server, 'jack');
      expect((await client.get('/api/audit')).status).toBe(403);
      for (let i = 0; i < 5; i++) await ctx.admin.post('/api/keys', { name: `k${i}` });
      await waitForAudit(ctx.admin, 'action=api_key.create', 5);
      const first = await ctx.admin.get('/api/audit?action=api_key.create&limit=2');
      expect(first.body.events).toHaveLength(2);
      expect(first.body.nextCursor).toBeTruthy();
      const second = await ctx.admin.get(
        `/api/audit?action=api_key.create&limit=2&cursor=${first.body.nextCursor}`,
      );
      expect(second.body.events).toHaveLength(2);
      const ids = new Set([...first.body.events, ...second.body.events].map((e: { id: string }) => e.id));
      expect(ids.size).toBe(4);
      expect(Date.parse(first.body.events[1].at)).toBeGreaterThanOrEqual(
        Date.parse(second.body.events[0].at),
      );
      expect((await ctx.admin.get('/api/audit?limit=0')).status).toBe(400);
      expect((await ctx.admin.get('/api/audit?cursor=%%%')).status).toBe(400);
      expect((await ctx.admin.get('/api/audit?bogus=1')).status).toBe(400);
    });
  });
});

describe('MCP_SERVERS_FILE', () => {
  it('syncs good entries and reports bad ones by name', async () => {
    const { tempDir } = await import('../support/config.ts');
    const { writeFile } = await import('node:fs/promises');
    const path = await import('node:path');
    const file = path.join(tempDir(), 'servers.json');
    await writeFile(
      file,
      JSON.stringify({
        mcpServers: {
          everything: { command: 'npx', args: ['mcp-server-everything'], env: { A: '1' } },
          remote: { url: 'http://127.0.0.1:9/mcp', headers: { 'X-Api-Key': 'k' } },
          metadata: { url: 'http://169.254.169.254/latest' },
          'Bad Name': { command: 'x' },
          nothing: { foo: 1 },
        },
      }),
    );
    const { syncCatalogFile } = await import('../../server/src/features/registry/index.ts');
    const { startServer } = await import('../../server/src/runtime.ts');
    const { testConfig, testLogger } = await import('../support/config.ts');
    const server = await startServer(testConfig({ UPSTREAM_ALLOW_LOOPBACK: 'true' }), testLogger());
    try {
      // Discovery is not attempted for file entries at sync; remote entries are still SSRF-checked.
      const report = await syncCatalogFile(file, server.services.registry, testLogger());
      expect(report.created.sort()).toEqual(['everything', 'remote']);
      expect(report.errors.map((e) => e.entry).sort()).toEqual(['Bad Name', 'metadata', 'nothing']);
      expect(report.errors.find((e) => e.entry === 'Bad Name')!.message).toContain('slug');
      const again = await syncCatalogFile(file, server.services.registry, testLogger());
      expect(again.updated.sort()).toEqual(['everything', 'remote']);
      const remote = await server.services.registry.require('remote');
      expect(remote.source).toBe('file');
      expect(remote.resolvedTransport).toMatchObject({
        type: 'streamable-http',
        headers: { 'X-Api-Key': 'k' },
      });
      await expect(
        syncCatalogFile(`${file}.missing`, server.services.registry, testLogger()),
      ).rejects.toThrow(/MCP_SERVERS_FILE .*servers\.json\.missing/);
      expect(await readFile(file, 'utf8')).toContain('mcpServers');
    } finally {
      await server.stop();
    }
  });
});
