import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Router } from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../logging/logger.ts';
import { createApp } from './app.ts';
import { HostPolicy, requireAllowedHost } from './hosts.ts';

/** A GET with a Host header of our choosing (fetch always sends the URL's own). */
function get(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

function serve(trustProxy: boolean, policy: (port: number) => HostPolicy) {
  const router = Router();
  router.get(['/api/ping', '/healthz'], (_req, res) => void res.json({ ok: true }));
  let hosts: HostPolicy | undefined;
  const app = createApp({
    logger: createLogger({ level: 'silent', name: 'test' }),
    bodyLimit: '1kb',
    trustProxy,
    early: [(req, res, next) => requireAllowedHost(hosts!, () => false)(req, res, next)],
    routers: [router],
  });
  const server = app.listen(0, '127.0.0.1');
  const port = () => (server.address() as AddressInfo).port;
  afterAll(() => void server.close());
  return {
    port,
    get: (path: string, headers: Record<string, string>) => {
      hosts ??= policy(port());
      return get(port(), path, headers);
    },
  };
}

describe('HostPolicy', () => {
  const policy = new HostPolicy({
    publicUrl: 'https://gw.example.com',
    listenPort: 3000,
    allowedHosts: ['internal.example', 'proxy.example:8443', '[fd00::1]:9000'],
  });

  it("accepts PUBLIC_URL's host (default port or none), loopback names on the listening port, and addresses", () => {
    for (const host of [
      'gw.example.com',
      'GW.Example.com:443',
      'gw.example.com.',
      'localhost:3000',
      '127.0.0.1:3000',
    ]) {
      expect(policy.allows(host), host).toBe(true);
    }
    for (const host of ['[::1]:3000', '10.1.2.3:3000', '[fd00::5]:1'])
      expect(policy.allows(host), host).toBe(true);
  });

  it('accepts ALLOWED_HOSTS entries, with their port when they name one', () => {
    expect(policy.allows('internal.example:1234')).toBe(true);
    expect(policy.allows('proxy.example:8443')).toBe(true);
    expect(policy.allows('proxy.example')).toBe(false);
  });

  it('refuses any other name, a wrong port, and garbage', () => {
    for (const host of [
      'attacker.example',
      'attacker.example:3000',
      'gw.example.com:8080',
      'gw.example.com.attacker.example',
      'localhost',
      'localhost:3001',
      'sub.localhost:3000',
      '',
      'a b',
      'gw.example.com:443:1',
    ]) {
      expect(policy.allows(host), host).toBe(false);
    }
    expect(policy.allows(undefined)).toBe(false);
  });

  it('without PUBLIC_URL serves the loopback names on the listening port; * turns the check off', () => {
    const local = new HostPolicy({ publicUrl: undefined, listenPort: 41234, allowedHosts: [] });
    expect(local.allows('localhost:41234')).toBe(true);
    expect(local.allows('127.0.0.1:41234')).toBe(true);
    expect(local.allows('rebind.attacker.example:41234')).toBe(false);
    const open = new HostPolicy({ publicUrl: undefined, listenPort: 1, allowedHosts: ['*'] });
    expect(open.allows('anything.example')).toBe(true);
  });
});

describe('requireAllowedHost', () => {
  const direct = serve(
    false,
    (port) => new HostPolicy({ publicUrl: undefined, listenPort: port, allowedHosts: [] }),
  );
  const proxied = serve(
    true,
    (port) => new HostPolicy({ publicUrl: 'https://gw.example.com', listenPort: port, allowedHosts: [] }),
  );

  it('refuses a foreign Host with 403, and serves localhost and health probes', async () => {
    expect(await direct.get('/api/ping', { host: `rebind.attacker.example:${direct.port()}` })).toBe(403);
    expect(await direct.get('/api/ping', { host: `localhost:${direct.port()}` })).toBe(200);
    expect(await direct.get('/healthz', { host: 'anything.example' })).toBe(200);
  });

  it('reads X-Forwarded-Host only when trust proxy is set', async () => {
    // Not trusted: the header neither lets a foreign Host in nor keeps a good one out.
    expect(
      await direct.get('/api/ping', {
        host: 'rebind.attacker.example',
        'x-forwarded-host': `localhost:${direct.port()}`,
      }),
    ).toBe(403);
    expect(
      await direct.get('/api/ping', {
        host: `localhost:${direct.port()}`,
        'x-forwarded-host': 'rebind.attacker.example',
      }),
    ).toBe(200);
    // Trusted (TRUST_PROXY): the proxy's X-Forwarded-Host is the host the client asked for.
    expect(
      await proxied.get('/api/ping', { host: 'backend:3000', 'x-forwarded-host': 'gw.example.com' }),
    ).toBe(200);
    expect(
      await proxied.get('/api/ping', {
        host: 'gw.example.com',
        'x-forwarded-host': 'rebind.attacker.example',
      }),
    ).toBe(403);
  });
});
