import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('gives the embedded default on an empty environment', () => {
    const config = loadConfig({});
    expect(config.database.kind).toBe('pglite');
    expect(config.redis).toBeUndefined();
    expect(config.http.port).toBe(3000);
    expect(config.http.host).toBe('127.0.0.1');
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.http)).toBe(true);
  });

  it('uses PostgreSQL and Redis when their URLs are set', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u:p@db:5432/gw',
      REDIS_URL: 'redis://cache:6379',
      REDIS_PREFIX: 'prod',
    });
    expect(config.database).toMatchObject({ kind: 'postgres', url: 'postgres://u:p@db:5432/gw' });
    expect(config.redis).toEqual({ url: 'redis://cache:6379', prefix: 'prod' });
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', REDIS_URL: '' }).database.kind).toBe('pglite');
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://db/x'],
    ['DATABASE_URL', 'not a url'],
    ['REDIS_URL', 'http://cache'],
    ['LOG_LEVEL', 'loud'],
    ['NODE_ENV', 'staging'],
    ['HTTP_BODY_LIMIT', 'lots'],
    ['REDIS_PREFIX', 'has space'],
    ['INTERNAL_SECRET', 'too-short'],
    ['REPLICA_URL', 'ftp://10.0.0.5:3000'],
    ['REPLICA_URL', 'http://10.0.0.5:3000/gateway'],
  ])('rejects %s=%s with an error naming the variable', (variable, value) => {
    let error: unknown;
    try {
      loadConfig({ [variable]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    expect((error as Error).message).toMatch(new RegExp(`^invalid configuration: ${variable} `));
  });

  it('requires INTERNAL_SECRET and REPLICA_URL in production with Redis, and not otherwise', () => {
    const production = {
      NODE_ENV: 'production',
      ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
      DATABASE_URL: 'postgres://u:p@db:5432/gw',
      REDIS_URL: 'redis://cache:6379',
    };
    const secret = 'x'.repeat(32);
    expect(() => loadConfig(production)).toThrow(/^invalid configuration: INTERNAL_SECRET is required/);
    expect(() => loadConfig({ ...production, INTERNAL_SECRET: secret })).toThrow(
      /^invalid configuration: REPLICA_URL is required/,
    );
    const config = loadConfig({
      ...production,
      INTERNAL_SECRET: secret,
      REPLICA_URL: 'http://10.0.0.5:3000/',
    });
    expect(config.replicas).toEqual({ internalSecret: secret, replicaUrl: 'http://10.0.0.5:3000' });
    // One process, or development: nothing to forward to, or defaults at start-up.
    expect(() => loadConfig({ ...production, REDIS_URL: undefined })).not.toThrow();
    expect(loadConfig({ REDIS_URL: 'redis://cache:6379' }).replicas).toEqual({
      internalSecret: undefined,
      replicaUrl: undefined,
    });
  });

  it('never echoes the value of a bad variable (it may be a secret)', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://user:hunter2@db/x' })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('hunter2') }),
    );
  });

  it('parses TRUST_PROXY forms', () => {
    expect(loadConfig({ TRUST_PROXY: 'true' }).http.trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '2' }).http.trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8' }).http.trustProxy).toEqual([
      'loopback',
      '10.0.0.0/8',
    ]);
  });

  it('parses ALLOWED_HOSTS and refuses what is not a host list', () => {
    expect(loadConfig({}).http.allowedHosts).toEqual([]);
    expect(
      loadConfig({ ALLOWED_HOSTS: 'gw.internal, proxy.example:8443,[fd00::1]:80' }).http.allowedHosts,
    ).toEqual(['gw.internal', 'proxy.example:8443', '[fd00::1]:80']);
    expect(loadConfig({ ALLOWED_HOSTS: '*' }).http.allowedHosts).toEqual(['*']);
    for (const bad of ['https://gw.example', 'gw.example/path', 'a b']) {
      expect(() => loadConfig({ ALLOWED_HOSTS: bad }), bad).toThrow(/ALLOWED_HOSTS/);
    }
  });

  it('turns tracing on only with OTEL_EXPORTER_OTLP_ENDPOINT, exporting to its /v1/traces', () => {
    expect(loadConfig({}).telemetry.tracing).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_HEADERS: 'a=b' }).telemetry.tracing).toBeUndefined();
    const config = loadConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=abc%3D%3D, x-tenant = t1',
      OTEL_SERVICE_NAME: 'gw-eu',
    });
    expect(config.telemetry.tracing).toEqual({
      endpoint: 'http://collector:4318/v1/traces',
      headers: { 'x-api-key': 'abc==', 'x-tenant': 't1' },
      serviceName: 'gw-eu',
      scheduleDelayMs: 5_000,
    });
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT/,
    );
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_HEADERS: 'novalue' })).toThrow(/OTEL_EXPORTER_OTLP_HEADERS/);
  });
});
