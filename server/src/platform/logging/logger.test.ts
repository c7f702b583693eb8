import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { testConfig } from '../../../../test/support/config.ts';
import { inRootSpan, startTracing } from '../telemetry/tracing.ts';
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

  it('puts the active trace and span ids on lines written inside a trace, and only there', async () => {
    const { lines, destination } = capture();
    const logger = createLogger({ level: 'info', name: 't', destination });
    logger.info('before tracing');
    // A receiver that accepts every export: the test reads log lines, not spans.
    const receiver = createServer((req, res) => req.resume().on('end', () => res.end('{}')));
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const config = testConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
    });
    const tracing = startTracing(config.telemetry, { role: 'server', version: 'test' }, logger)!;
    try {
      await inRootSpan('unit', {}, async () => logger.info({ field: 1 }, 'inside'));
      logger.info('outside');
    } finally {
      await tracing.shutdown();
      await new Promise((r) => receiver.close(r));
    }
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const inside = parsed.find((l) => l['msg'] === 'inside')!;
    expect(inside['trace_id']).toMatch(/^[0-9a-f]{32}$/);
    expect(inside['span_id']).toMatch(/^[0-9a-f]{16}$/);
    expect(inside['field']).toBe(1);
    for (const msg of ['before tracing', 'outside'])
      expect(parsed.find((l) => l['msg'] === msg)).not.toHaveProperty('trace_id');
  });
});
