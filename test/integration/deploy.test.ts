// What operators copy from deploy/: the Grafana dashboard and the Prometheus alert rules
// name only metrics and labels that /metrics really exports; the systemd units pass
// `systemd-analyze verify` and run the entry files the docs name; the Caddyfiles validate.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { Metrics } from '../../server/src/platform/metrics/metrics.ts';
import { parsePrometheusText, type MetricFamily } from '../support/prometheus.ts';
import { ROOT } from '../support/process.ts';
import { useServer } from '../support/server.ts';
import { IN_CI } from '../support/services.ts';

const ctx = useServer('pglite');
let exported: Map<string, MetricFamily>;
/** Label names of each metric, as the code declares them (families without samples show none). */
const labelsOf = new Map<string, Set<string>>();

beforeAll(async () => {
  const res = await fetch(`${ctx.server.url}/metrics`);
  expect(res.status).toBe(200);
  exported = parsePrometheusText(await res.text());
  for (const m of new Metrics().registry.getMetricsAsArray()) {
    const declared = m as unknown as { name: string; labelNames?: string[] };
    labelsOf.set(declared.name, new Set(declared.labelNames ?? []));
  }
});

/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = new Set(['instance', 'job']);
const METRIC = /\b((?:gateway|process|nodejs)_[a-z0-9_]+|up)\b(\s*\{([^}]*)\})?/g;

/**
 * The problems of one PromQL expression: metrics /metrics does not export, and labels
 * (in matchers or in `by (...)`) that none of its metrics has.
 */
function problems(expr: string): string[] {
  const found: string[] = [];
  const labels = new Set(TARGET_LABELS);
  for (const m of expr.matchAll(METRIC)) {
    const name = m[1]!;
    if (name === 'up') continue; // Prometheus's own, per scrape target.
    const base = name.replace(/_(bucket|sum|count)$/, '');
    const family = exported.get(name) ?? exported.get(base);
    if (!family || (name !== base && family.type !== 'histogram' && family.type !== 'summary')) {
      found.push(`metric ${name} is not exported`);
      continue;
    }
    const own = new Set([...(labelsOf.get(family.name) ?? []), ...TARGET_LABELS]);
    if (name.endsWith('_bucket')) own.add('le');
    for (const l of own) labels.add(l);
    for (const matcher of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)/g)) {
      if (!own.has(matcher[1]!)) found.push(`${name} has no label ${matcher[1]}`);
    }
  }
  for (const clause of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const l of clause[1]!
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      if (!labels.has(l)) found.push(`no metric of the expression has label ${l}`);
    }
  }
  return found;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string }[];
  panels?: Panel[];
}

function dashboardProblems(dashboard: { panels: Panel[]; templating?: { list: { definition?: string }[] } }) {
  const found: string[] = [];
  const ids = new Set<number>();
  for (const panel of dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])])) {
    if (ids.has(panel.id)) found.push(`panel id ${panel.id} repeats`);
    ids.add(panel.id);
    if (panel.gridPos.x + panel.gridPos.w > 24) found.push(`${panel.title} is wider than the grid`);
    if (panel.type === 'row') continue;
    if (!panel.targets?.length) found.push(`${panel.title} has no query`);
    for (const t of panel.targets ?? []) found.push(...problems(t.expr).map((p) => `${panel.title}: ${p}`));
  }
  for (const v of dashboard.templating?.list ?? []) {
    if (v.definition) found.push(...problems(v.definition).map((p) => `variable: ${p}`));
  }
  return found;
}

describe('deploy/grafana and deploy/prometheus', () => {
  it('the dashboard queries only metrics and labels that /metrics exports', () => {
    const dashboard = JSON.parse(
      readFileSync(path.join(ROOT, 'deploy/grafana/gateway-dashboard.json'), 'utf8'),
    ) as Parameters<typeof dashboardProblems>[0];
    expect(dashboard.panels.filter((p) => p.type !== 'row').length).toBeGreaterThan(10);
    expect(dashboardProblems(dashboard)).toEqual([]);
  });

  it('every alert rule queries only exported metrics and labels', () => {
    const rules = parseYaml(readFileSync(path.join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')) as {
      groups: { name: string; rules: { alert: string; expr: string; annotations: object }[] }[];
    };
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.map((r) => r.alert)).toEqual(
      expect.arrayContaining(['GatewayUpstreamDown', 'GatewayAuditSpilling', 'GatewayTokenRefreshFailures']),
    );
    expect(all.flatMap((r) => problems(r.expr).map((p) => `${r.alert}: ${p}`))).toEqual([]);
  });

  it('the check finds a panel on a metric that does not exist, and a label no metric has', () => {
    const bad = {
      panels: [
        {
          id: 1,
          type: 'timeseries',
          title: 'bad',
          gridPos: { x: 0, y: 0, w: 12, h: 8 },
          targets: [
            { expr: 'rate(gateway_nope_total[5m])' },
            { expr: 'sum by (colour) (rate(gateway_mcp_requests_total{flavour="x"}[5m]))' },
          ],
        },
      ],
    };
    expect(dashboardProblems(bad)).toEqual([
      'bad: metric gateway_nope_total is not exported',
      'bad: gateway_mcp_requests_total has no label flavour',
      'bad: no metric of the expression has label colour',
    ]);
  });
});

/** A tool of the machine's, or undefined with a loud message (a failure under CI). */
function tool(name: string, why: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
  if (found) return found;
  const message = `${name} is not installed: ${why} is not checked (Debian: apt-get install ${name === 'systemd-analyze' ? 'systemd' : name})`;
  if (IN_CI) throw new Error(`${message}, and CI is set`);
  console.warn(`\n*** SKIPPED: ${message}\n`);
  return undefined;
}

describe('deploy/systemd', () => {
  const dir = path.join(ROOT, 'deploy/systemd');

  it('each unit runs an entry file of the project that the deployment guide documents', () => {
    const guide = readFileSync(path.join(ROOT, 'docs/DEPLOY.md'), 'utf8');
    const units = readdirSync(dir).filter((f) => f.endsWith('.service'));
    expect(units.sort()).toEqual(['mcp-gateway-workers.service', 'mcp-gateway@.service']);
    for (const unit of units) {
      const exec = /^ExecStart=(\S+) (\S+)$/m.exec(readFileSync(path.join(dir, unit), 'utf8'));
      expect(exec, unit).not.toBeNull();
      const entry = exec![2]!;
      expect(readdirSync(path.join(ROOT, path.dirname(entry)))).toContain(path.basename(entry));
      expect(guide, `docs/DEPLOY.md should show ${entry}`).toContain(`node ${entry}`);
    }
  });

  it('the units pass systemd-analyze verify without a warning', () => {
    const analyze = tool('systemd-analyze', 'the systemd units');
    if (!analyze) return;
    // Instances of the template as the target starts them, beside the other units.
    const copy = mkdtempSync(path.join(tmpdir(), 'gw-units-'));
    for (const f of readdirSync(dir)) copyFileSync(path.join(dir, f), path.join(copy, f));
    const template = readFileSync(path.join(dir, 'mcp-gateway@.service'), 'utf8');
    writeFileSync(path.join(copy, 'mcp-gateway@3001.service'), template);
    const run = spawnSync(
      analyze,
      ['verify', 'mcp-gateway@3001.service', 'mcp-gateway-workers.service', 'mcp-gateway.target'],
      { cwd: copy, encoding: 'utf8' },
    );
    expect(`${run.stdout}${run.stderr}`.trim()).toBe('');
    expect(run.status).toBe(0);
  });
});

describe('Caddyfiles', () => {
  it.each(['deploy/Caddyfile', 'deploy/systemd/Caddyfile'])('%s passes caddy validate', (file) => {
    const caddy = tool('caddy', `${file}`);
    if (!caddy) return;
    const run = spawnSync(caddy, ['validate', '--adapter', 'caddyfile', '--config', path.join(ROOT, file)], {
      encoding: 'utf8',
      // eslint-disable-next-line no-restricted-properties -- the machine's PATH, nothing else
      env: { PATH: process.env['PATH'], HOME: tmpdir(), GATEWAY_DOMAIN: 'gateway.example.com' },
    });
    expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
  });
});
