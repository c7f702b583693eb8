// HTTPS-only transport in production: the server's own TLS (TLS_CERT_FILE/TLS_KEY_FILE, a
// self-signed certificate made here and trusted by the client), and TLS terminated by a
// proxy (TRUST_PROXY=1), where plain HTTP is refused unless the proxy says X-Forwarded-Proto
// https. Health checks always answer; bad certificate files stop start-up with one line.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from 'selfsigned';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/config.ts';
import { initializeRequest, MCP_ACCEPT } from '../support/mcp.ts';
import { spawnEntry } from '../support/process.ts';
import { ADMIN_TOKEN, useServer } from '../support/server.ts';

const HSTS = 'max-age=31536000; includeSubDomains';
const ENCRYPTION_KEY = randomBytes(32).toString('base64');
const production = { NODE_ENV: 'production', ENCRYPTION_KEY };

const dir = tempDir();
const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
  keyType: 'ec',
  curve: 'P-256',
  extensions: [
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
      ],
    },
  ],
});
const certFile = path.join(dir, 'cert.pem');
const keyFile = path.join(dir, 'key.pem');
writeFileSync(certFile, pems.cert);
writeFileSync(keyFile, pems.private, { mode: 0o600 });

describe('the server serving HTTPS itself, in production', () => {
  const ctx = useServer('pglite', { ...production, TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile });
  const trusting = new Agent({ connect: { ca: pems.cert } });
  afterAll(() => trusting.close());
  const get = (p: string, headers: Record<string, string> = {}) =>
    undiciFetch(`${ctx.server.url}${p}`, { dispatcher: trusting, headers });

  it('listens with TLS on the certificate given', async () => {
    expect(ctx.server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const health = await get('/healthz');
    expect(health.status).toBe(200);
    // A client that does not trust the certificate cannot talk to it at all.
    await expect(fetch(`${ctx.server.url}/healthz`)).rejects.toThrow();
  });

  it('answers the API and MCP over HTTPS, with HSTS', async () => {
    const servers = await get('/api/servers', { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(servers.status).toBe(200);
    expect(servers.headers.get('strict-transport-security')).toBe(HSTS);
    const init = await undiciFetch(`${ctx.server.url}/mcp`, {
      dispatcher: trusting,
      method: 'POST',
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        accept: MCP_ACCEPT,
        'content-type': 'application/json',
      },
      body: JSON.stringify(initializeRequest(1)),
    });
    expect(init.status).toBe(200);
    expect(init.headers.get('mcp-session-id')).toBeTruthy();
    expect(init.headers.get('strict-transport-security')).toBe(HSTS);
    await init.body?.cancel();
  });

  it('does not answer plain HTTP on its port', async () => {
    const plain = ctx.server.url.replace(/^https:/, 'http:');
    const outcome = await fetch(`${plain}/api/servers`).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(outcome).not.toBe(200);
  });
});

describe('behind a TLS-terminating proxy (TRUST_PROXY=1), in production', () => {
  const PUBLIC_URL = 'https://gateway.example.test';
  const ctx = useServer('pglite', { ...production, TRUST_PROXY: '1', PUBLIC_URL });
  const viaProxy = { 'x-forwarded-proto': 'https' };
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

  it('answers health checks over plain HTTP', async () => {
    expect((await fetch(`${ctx.server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${ctx.server.url}/readyz`)).status).toBe(200);
  });

  it('refuses plain-HTTP API, MCP and metrics requests with 403 and a clear message', async () => {
    for (const [p, init] of [
      ['/api/servers', { headers: admin }],
      ['/metrics', {}],
      [
        '/mcp',
        {
          method: 'POST',
          headers: { ...admin, accept: MCP_ACCEPT, 'content-type': 'application/json' },
          body: JSON.stringify(initializeRequest(1)),
        },
      ],
    ] as const) {
      const res = await fetch(`${ctx.server.url}${p}`, init);
      expect(res.status, p).toBe(403);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('forbidden');
      expect(body.error.message).toBe(
        `plain HTTP is refused: this server only answers over HTTPS (${PUBLIC_URL})`,
      );
      expect(res.headers.get('strict-transport-security')).toBeNull();
    }
  });

  it('redirects a browser to the https public URL', async () => {
    const res = await fetch(`${ctx.server.url}/some/page?tab=2`, {
      headers: { accept: 'text/html,application/xhtml+xml' },
      redirect: 'manual',
    });
    expect(res.status).toBe(308);
    expect(res.headers.get('location')).toBe(`${PUBLIC_URL}/some/page?tab=2`);
  });

  it('serves what the proxy received over TLS (X-Forwarded-Proto: https), with HSTS', async () => {
    const res = await fetch(`${ctx.server.url}/api/servers`, { headers: { ...admin, ...viaProxy } });
    expect(res.status).toBe(200);
    expect(res.headers.get('strict-transport-security')).toBe(HSTS);
    const init = await fetch(`${ctx.server.url}/mcp`, {
      method: 'POST',
      headers: { ...admin, ...viaProxy, accept: MCP_ACCEPT, 'content-type': 'application/json' },
      body: JSON.stringify(initializeRequest(1)),
    });
    expect(init.status).toBe(200);
    await init.body?.cancel();
    // A forwarded-proto of http is plain HTTP all the same.
    const plain = await fetch(`${ctx.server.url}/api/servers`, {
      headers: { ...admin, 'x-forwarded-proto': 'http' },
    });
    expect(plain.status).toBe(403);
  });
});

describe('bad TLS files', () => {
  it.each([
    ['TLS_CERT_FILE', { TLS_CERT_FILE: path.join(dir, 'missing.pem'), TLS_KEY_FILE: keyFile }],
    ['TLS_KEY_FILE', { TLS_CERT_FILE: certFile, TLS_KEY_FILE: certFile }],
    ['TLS_KEY_FILE', { TLS_CERT_FILE: certFile }],
  ])('stop start-up with one line naming %s', async (variable, env) => {
    const p = spawnEntry('server/src/main.ts', { PORT: '0', DATA_DIR: tempDir(), ...env });
    expect(await p.exited).toBe(1);
    const lines = p.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^server: invalid configuration: ${variable} `));
    expect(p.output()).not.toContain('BEGIN');
  });
});
