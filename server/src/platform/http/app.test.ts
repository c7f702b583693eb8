import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Router } from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../logging/logger.ts';
import { createApp } from './app.ts';
import { AppError } from './errors.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'info', name: 'test', destination }) };
}

describe('the REST error handler', () => {
  const { lines, logger } = capture();
  const router = Router();
  router.use((_req, res, next) => {
    res.locals['principal'] = { userId: 'user-1' };
    next();
  });
  router.get('/api/boom', () => {
    throw new Error('database said: password=hunter2 at row 7');
  });
  router.post('/api/echo', (req, res) => {
    res.json(req.body);
  });
  router.get('/api/teapot', () => {
    throw new AppError('conflict', 'already there');
  });
  const app = createApp({ logger, bodyLimit: '1mb', trustProxy: false, routers: [router] });
  const server = app.listen(0, '127.0.0.1');
  const url = () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  afterAll(() => void server.close());

  it('answers an internal error with a generic message and the request id, and logs who and what', async () => {
    const res = await fetch(`${url()}/api/boom`, { headers: { 'x-request-id': 'req-abc-123' } });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-request-id')).toBe('req-abc-123');
    expect(await res.json()).toEqual({
      error: {
        code: 'internal',
        message: 'internal error (request id req-abc-123)',
        requestId: 'req-abc-123',
      },
    });
    const logged = lines.find((l) => l['msg'] === 'request failed');
    expect(logged).toMatchObject({
      level: 'error',
      requestId: 'req-abc-123',
      userId: 'user-1',
      method: 'GET',
      path: '/api/boom',
      err: { message: expect.stringContaining('database said') },
    });
    // The access log line names the user too.
    const access = lines.find((l) => (l['res'] as { statusCode?: number } | undefined)?.statusCode === 500);
    expect(access).toMatchObject({ userId: 'user-1', req: { id: 'req-abc-123', method: 'GET' } });
  });

  it("shows the caller's own errors as they are, without logging them as failures", async () => {
    const before = lines.filter((l) => l['msg'] === 'request failed').length;
    const res = await fetch(`${url()}/api/teapot`);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe('already there');
    expect(lines.filter((l) => l['msg'] === 'request failed').length).toBe(before);
  });

  it('refuses a body nested deeper than the limit as bad JSON (400), not as an internal error', async () => {
    const depth = 100_000;
    const res = await fetch(`${url()}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-deep-1' },
      body: `{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({
      code: 'bad_request',
      message: expect.stringMatching(/deeper than \d+ levels/),
    });
    expect(JSON.stringify(body)).not.toMatch(/RangeError|call stack/);
    expect(lines.filter((l) => (l['requestId'] as string | undefined) === 'req-deep-1')).toEqual([]);
    // Ordinary nesting passes.
    const ok = await fetch(`${url()}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ a: [[{ b: '[[[[{{{{' }]] }),
    });
    expect(await ok.json()).toEqual({ a: [[{ b: '[[[[{{{{' }]] });
  });

  it('logs sign-in and OAuth callback URLs without their query values, failed requests included', async () => {
    const secrets = ['CODE-1a2b3c', 'STATE-4d5e6f', 'UPSTREAM-CODE-7g8h', 'UPSTREAM-STATE-9i0j'];
    await fetch(`${url()}/auth/callback?code=${secrets[0]}&state=${secrets[1]}`, {
      headers: { 'x-request-id': 'req-cb-1' },
    });
    await fetch(`${url()}/oauth/upstream/callback?code=${secrets[2]}&state=${secrets[3]}`, {
      headers: { 'x-request-id': 'req-cb-2' },
    });
    await fetch(`${url()}/api/boom?code=${secrets[0]}`, { headers: { 'x-request-id': 'req-cb-3' } });
    const text = JSON.stringify(lines);
    for (const secret of secrets) expect(text).not.toContain(secret);
    const access = (id: string) => lines.find((l) => (l['req'] as { id?: string } | undefined)?.id === id);
    expect(access('req-cb-1')).toMatchObject({
      req: { url: '/auth/callback?code=[redacted]&state=[redacted]' },
    });
    expect(access('req-cb-2')).toMatchObject({
      req: { url: '/oauth/upstream/callback?code=[redacted]&state=[redacted]' },
    });
    expect(access('req-cb-3')).toMatchObject({ req: { url: '/api/boom?code=[redacted]' } });
  });
});
