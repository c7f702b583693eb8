import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, testLogger } from '../../../../test/support/config.ts';
import { errorHandler } from './app.ts';
import { HSTS_VALUE, httpsOnly, loadTls } from './tls.ts';

const selfSigned = (cn: string) =>
  generate([{ name: 'commonName', value: cn }], {
    keyType: 'ec',
    curve: 'P-256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: cn }] }],
  });

describe('loadTls', () => {
  const dir = tempDir();
  const file = (name: string, content: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, content);
    return p;
  };
  let cert: string;
  let key: string;
  let otherKey: string;
  beforeAll(async () => {
    const [a, b] = await Promise.all([selfSigned('localhost'), selfSigned('other')]);
    cert = file('cert.pem', a.cert);
    key = file('key.pem', a.private);
    otherKey = file('other-key.pem', b.private);
  });

  it('loads a matching certificate and key', async () => {
    const tls = await loadTls({ certFile: cert, keyFile: key });
    expect(tls.cert.toString()).toContain('BEGIN CERTIFICATE');
    expect(tls.validTo.getTime()).toBeGreaterThan(Date.now());
  });

  it.each([
    [
      'a missing certificate',
      () => ({ certFile: path.join(dir, 'nope.pem'), keyFile: key }),
      /^invalid configuration: TLS_CERT_FILE cannot be read: .*nope\.pem \(no such file\)$/,
    ],
    [
      'a missing key',
      () => ({ certFile: cert, keyFile: path.join(dir, 'nokey.pem') }),
      /^invalid configuration: TLS_KEY_FILE cannot be read: .*nokey\.pem \(no such file\)$/,
    ],
    [
      'a certificate that is not PEM',
      () => ({ certFile: file('junk.pem', 'hello'), keyFile: key }),
      /^invalid configuration: TLS_CERT_FILE is not a PEM certificate: /,
    ],
    [
      'a key that is not a key',
      () => ({ certFile: cert, keyFile: cert }),
      /^invalid configuration: TLS_KEY_FILE is not an unencrypted PEM private key: /,
    ],
    [
      'the key of another certificate',
      () => ({ certFile: cert, keyFile: otherKey }),
      /^invalid configuration: TLS_KEY_FILE is not the private key of the certificate in TLS_CERT_FILE$/,
    ],
  ])('refuses %s with one line naming the variable', async (_what, files, message) => {
    const err = (await loadTls(files()).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
    expect(err.message).not.toContain('BEGIN');
  });
});

describe('httpsOnly', () => {
  const servers: ReturnType<express.Express['listen']>[] = [];
  const start = async (trustProxy: boolean | number, enabled: boolean, publicUrl?: string) => {
    const app = express();
    app.set('trust proxy', trustProxy);
    app.use(httpsOnly({ enabled, publicUrl }));
    app.get(['/healthz', '/api/thing', '/'], (_req, res) => void res.json({ ok: true }));
    app.use(errorHandler(testLogger()));
    const server = app.listen(0, '127.0.0.1');
    servers.push(server);
    await new Promise((r) => server.once('listening', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  afterAll(() => servers.forEach((s) => s.close()));

  it('refuses plain HTTP with 403 and a clear message, except the health checks', async () => {
    const url = await start(1, true);
    const res = await fetch(`${url}/api/thing`);
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: 'forbidden' });
    expect(body.error.message).toMatch(/plain HTTP is refused: this server only answers over HTTPS/);
    expect(res.headers.get('strict-transport-security')).toBeNull();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('redirects browsers to https (PUBLIC_URL when it is https)', async () => {
    const url = await start(1, true, 'https://gateway.example.test');
    const res = await fetch(`${url}/?x=1`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    expect(res.status).toBe(308);
    expect(res.headers.get('location')).toBe('https://gateway.example.test/?x=1');
    const own = await start(1, true);
    const res2 = await fetch(`${own}/`, { headers: { accept: 'text/html,*/*' }, redirect: 'manual' });
    expect(res2.headers.get('location')).toBe('https://127.0.0.1/');
    // Not a navigation: refused rather than redirected (credentials would already be sent).
    const post = await fetch(`${own}/`, {
      method: 'POST',
      headers: { accept: 'text/html' },
      redirect: 'manual',
    });
    expect(post.status).toBe(403);
  });

  it('accepts X-Forwarded-Proto: https from a trusted proxy, with HSTS', async () => {
    const url = await start(1, true);
    const res = await fetch(`${url}/api/thing`, { headers: { 'x-forwarded-proto': 'https' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('strict-transport-security')).toBe(HSTS_VALUE);
    expect(HSTS_VALUE).toBe('max-age=31536000; includeSubDomains');
  });

  it('ignores X-Forwarded-Proto when no proxy is trusted (a client cannot claim TLS)', async () => {
    const url = await start(false, true);
    const res = await fetch(`${url}/api/thing`, { headers: { 'x-forwarded-proto': 'https' } });
    expect(res.status).toBe(403);
  });

  it('does nothing outside production', async () => {
    const url = await start(false, false);
    const res = await fetch(`${url}/api/thing`);
    expect(res.status).toBe(200);
    expect(res.headers.get('strict-transport-security')).toBeNull();
  });
});
