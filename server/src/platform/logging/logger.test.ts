import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, loggableUrl } from './logger.ts';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, destination };
}

describe('logger', () => {
  it('redacts secrets by key name at any depth it is given', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ level: 'info', name: 't', destination });
    logger.info(
      {
        password: 'p1',
        token: 't1',
        req: { headers: { authorization: 'Bearer t2', cookie: 'sid=t3' } },
        upstream: { apiKey: 'k1', client_secret: 'c1', name: 'visible' },
      },
      'hello',
    );
    const line = lines.join('');
    for (const secret of ['p1', 't1', 't2', 't3', 'k1', 'c1']) {
      expect(line).not.toContain(`"${secret}"`);
      expect(line).not.toContain(secret === 't2' ? 'Bearer t2' : `:"${secret}`);
    }
    expect(line).toContain('visible');
    expect(line).toContain('[redacted]');
  });

  it('keeps a URL path and its query parameter names, never a query value', () => {
    expect(loggableUrl('/auth/callback?code=abc123&state=xyz789')).toBe(
      '/auth/callback?code=[redacted]&state=[redacted]',
    );
    expect(loggableUrl('/oauth/upstream/start?state=s3cr3t')).toBe('/oauth/upstream/start?state=[redacted]');
    expect(loggableUrl('/x?bare-token-value&a=1&&b=')).toBe('/x?[redacted]&a=[redacted]&b=[redacted]');
    expect(loggableUrl('/api/servers')).toBe('/api/servers');
    expect(loggableUrl('/api/servers?')).toBe('/api/servers');
  });
});
