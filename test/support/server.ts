import { afterAll, beforeAll } from 'vitest';
import type { Env } from '../../server/src/platform/config/config.ts';
import { startServer, type RunningServer } from '../../server/src/runtime.ts';
import { testConfig, testLogger } from './config.ts';
import { createTestDatabase, type Engine, type TestDatabase } from './database.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdefghijklmnop';

/** A JSON client for the REST API with a bearer key. */
export function api(baseUrl: string, key?: string) {
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON
    const json: any = text ? JSON.parse(text) : undefined;
    return { status: res.status, headers: res.headers, body: json };
  };
  return {
    get: (path: string) => call('GET', path),
    post: (path: string, body?: unknown) => call('POST', path, body ?? {}),
    put: (path: string, body: unknown) => call('PUT', path, body),
    patch: (path: string, body: unknown) => call('PATCH', path, body),
    delete: (path: string) => call('DELETE', path),
  };
}

/**
 * Starts an in-process server for a test file (on `engine`), with the admin key
 * ADMIN_TOKEN and loopback upstreams allowed; stops it and drops its database afterwards.
 */
export function useServer(engine: Engine = 'pglite', env: Env = {}) {
  const state: { server: RunningServer; db: TestDatabase; admin: ReturnType<typeof api> } = {} as never;
  beforeAll(async () => {
    state.db = await createTestDatabase(engine);
    state.server = await startServer(
      testConfig({
        ...(state.db.url ? { DATABASE_URL: state.db.url } : {}),
        ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
        UPSTREAM_ALLOW_LOOPBACK: 'true',
        AUDIT_FLUSH_INTERVAL_MS: '20',
        ...env,
      }),
      testLogger(),
    );
    state.admin = api(state.server.url, ADMIN_TOKEN);
  });
  afterAll(async () => {
    await state.server?.stop();
    await state.db?.drop();
  });
  return state;
}

/** Creates a user-role principal and an API key for it (through the database layer). */
export async function createUserKey(server: RunningServer, name: string, servers?: string[]) {
  const user = await server.services.users.upsertBySubject({
    subject: `test|${name}`,
    displayName: name,
    role: 'user',
  });
  const created = await server.services.keys.create(
    { userId: user.id, displayName: name, role: 'user', via: 'api_key' },
    { name: `${name}-key`, ...(servers ? { servers } : {}) },
  );
  return { user, key: created.key, client: api(server.url, created.key) };
}

/** Grants access to a server through the admin REST API (everyone by default). */
export async function grant(
  admin: ReturnType<typeof api>,
  server: string,
  rule: { subjectType?: 'user' | 'group' | 'everyone'; subject?: string; tools?: string[] } = {},
) {
  const res = await admin.post('/api/access-rules', {
    subjectType: rule.subjectType ?? 'everyone',
    server,
    ...(rule.subject ? { subject: rule.subject } : {}),
    ...(rule.tools ? { tools: rule.tools } : {}),
  });
  if (res.status !== 201) throw new Error(`grant failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string };
}
