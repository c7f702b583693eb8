import { describe, expect, it } from 'vitest';
import { parsePrometheusText, sampleValue } from '../../../../test/support/prometheus.ts';
import { Metrics } from './metrics.ts';

const scrape = async (m: Metrics) => parsePrometheusText((await m.render()).body);

describe('Metrics', () => {
  it('renders valid Prometheus text with the default process metrics', async () => {
    const m = new Metrics();
    const { contentType, body } = await m.render();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusText(body);
    expect(families.get('process_cpu_user_seconds_total')?.type).toBe('counter');
    expect(families.get('nodejs_heap_size_used_bytes')?.type).toBe('gauge');
    expect(families.get('gateway_mcp_request_duration_seconds')?.type).toBe('histogram');
  });

  it('keeps each instance separate (several servers in one process)', async () => {
    const a = new Metrics({ defaultMetrics: false });
    const b = new Metrics({ defaultMetrics: false });
    a.recordRateLimitRejection('user');
    a.recordRateLimitRejection('user');
    expect(sampleValue(await scrape(a), 'gateway_rate_limit_rejections_total', { scope: 'user' })).toBe(2);
    expect(sampleValue(await scrape(b), 'gateway_rate_limit_rejections_total', { scope: 'user' })).toBe(
      undefined,
    );
  });

  it('counts MCP requests with a latency histogram per server, method, tool and status', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.recordMcpRequest({ server: 'every', method: 'tools/call', tool: 'echo', status: 'ok', latencyMs: 30 });
    m.recordMcpRequest({
      server: 'every',
      method: 'tools/call',
      tool: 'echo',
      status: 'ok',
      latencyMs: 3000,
    });
    const f = await scrape(m);
    const labels = { server: 'every', method: 'tools/call', tool: 'echo', status: 'ok' };
    expect(sampleValue(f, 'gateway_mcp_requests_total', labels)).toBe(2);
    expect(sampleValue(f, 'gateway_mcp_request_duration_seconds_count', labels)).toBe(2);
    expect(sampleValue(f, 'gateway_mcp_request_duration_seconds_bucket', { ...labels, le: '0.05' })).toBe(1);
    expect(sampleValue(f, 'gateway_mcp_request_duration_seconds_sum', labels)).toBeCloseTo(3.03, 5);
  });

  it('folds caller-chosen label values into _other past a bound', async () => {
    const m = new Metrics({ defaultMetrics: false });
    for (let i = 0; i < 600; i++) {
      m.recordMcpRequest({ server: 's', method: 'tools/call', tool: `t${i}`, status: 'error', latencyMs: 1 });
    }
    const series = (await scrape(m)).get('gateway_mcp_requests_total')!.samples;
    expect(series.length).toBeLessThanOrEqual(501);
    expect(sampleValue(await scrape(m), 'gateway_mcp_requests_total', { tool: '_other' })).toBe(100);
  });

  it('reports upstream health as up/status/latency gauges, and unknown as no up series', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.setUpstreamHealth('alpha', 'up', 12);
    m.setUpstreamHealth('beta', 'down', null);
    m.setUpstreamHealth('gamma', 'degraded', 2500);
    let f = await scrape(m);
    expect(sampleValue(f, 'gateway_upstream_up', { server: 'alpha' })).toBe(1);
    expect(sampleValue(f, 'gateway_upstream_up', { server: 'beta' })).toBe(0);
    expect(sampleValue(f, 'gateway_upstream_up', { server: 'gamma' })).toBe(1);
    expect(sampleValue(f, 'gateway_upstream_status', { server: 'gamma', status: 'degraded' })).toBe(1);
    expect(sampleValue(f, 'gateway_upstream_status', { server: 'gamma', status: 'up' })).toBe(0);
    expect(sampleValue(f, 'gateway_upstream_check_latency_seconds', { server: 'alpha' })).toBeCloseTo(0.012);
    expect(sampleValue(f, 'gateway_upstream_check_latency_seconds', { server: 'beta' })).toBe(undefined);
    m.setUpstreamHealth('alpha', 'unknown', null);
    m.forgetUpstream('beta');
    f = await scrape(m);
    expect(sampleValue(f, 'gateway_upstream_up', { server: 'alpha' })).toBe(undefined);
    expect(sampleValue(f, 'gateway_upstream_status', { server: 'alpha', status: 'unknown' })).toBe(1);
    expect(sampleValue(f, 'gateway_upstream_up', { server: 'beta' })).toBe(undefined);
  });

  it('reads upstream health at scrape time when the checks run in another process', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.setUpstreamHealth('alpha', 'up', 12);
    let checks: { server: string; status: 'up' | 'down' }[] = [
      { server: 'alpha', status: 'down' },
      { server: 'beta', status: 'up' },
    ];
    m.observe({ upstreamHealth: () => Promise.resolve(checks) });
    let f = await scrape(m);
    expect(sampleValue(f, 'gateway_upstream_up', { server: 'alpha' })).toBe(0);
    expect(sampleValue(f, 'gateway_upstream_status', { server: 'alpha', status: 'down' })).toBe(1);
    expect(sampleValue(f, 'gateway_upstream_up', { server: 'beta' })).toBe(1);
    // Latency is left as the in-process check set it until a check says it was not reached.
    expect(sampleValue(f, 'gateway_upstream_check_latency_seconds', { server: 'beta' })).toBe(undefined);
    checks = [{ server: 'beta', status: 'up' }];
    await new Promise((r) => setTimeout(r, 1_050));
    f = await scrape(m);
    expect(sampleValue(f, 'gateway_upstream_up', { server: 'alpha' })).toBe(undefined);
    expect(sampleValue(f, 'gateway_upstream_status', { server: 'alpha', status: 'down' })).toBe(undefined);
  });

  it('counts token refreshes by outcome', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.recordTokenRefresh('ok');
    m.recordTokenRefresh('invalid_grant');
    m.recordTokenRefresh('ok');
    const f = await scrape(m);
    expect(sampleValue(f, 'gateway_token_refresh_total', { outcome: 'ok' })).toBe(2);
    expect(sampleValue(f, 'gateway_token_refresh_total', { outcome: 'invalid_grant' })).toBe(1);
  });

  it('reads gauges at scrape time, and keeps the last job depth when the runner is slow', async () => {
    const m = new Metrics({ defaultMetrics: false });
    let sessions = 2;
    let slow = false;
    m.observe({
      sessions: () => sessions,
      warmProcesses: () => 1,
      auditPending: () => 7,
      jobQueue: () => (slow ? new Promise(() => {}) : Promise.resolve({ waiting: 3, active: 1, failed: 0 })),
    });
    let f = await scrape(m);
    expect(sampleValue(f, 'gateway_mcp_sessions_active')).toBe(2);
    expect(sampleValue(f, 'gateway_stdio_warm_processes')).toBe(1);
    expect(sampleValue(f, 'gateway_audit_buffered_events')).toBe(7);
    expect(sampleValue(f, 'gateway_job_queue_jobs', { state: 'waiting' })).toBe(3);
    sessions = 0;
    slow = true;
    const started = Date.now();
    f = await scrape(m);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(sampleValue(f, 'gateway_mcp_sessions_active')).toBe(0);
    expect(sampleValue(f, 'gateway_job_queue_jobs', { state: 'waiting' })).toBe(3);
  });
});
