import type { Request, RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Upstream health as the health-check job reports it (shared `UpstreamStatus`). */
export type UpstreamHealthStatus = 'up' | 'degraded' | 'down' | 'unknown';

/** One MCP request relayed (or answered) by the gateway, as metrics see it. */
export interface McpRequestSample {
  /** Server slug; `_aggregate` for what the aggregate endpoint answers itself. */
  server: string;
  method: string;
  /** Tool (or prompt) name for tools/call and prompts/get; empty otherwise. */
  tool: string;
  /** ok, error, tool_error, denied, timeout, cancelled, failed. */
  status: string;
  latencyMs: number;
}

/** What the gauges read when Prometheus scrapes; attached after the services exist. */
export interface MetricSources {
  /** Open downstream MCP sessions. */
  sessions?: () => number;
  /** Pre-started stdio processes waiting in the warm pool. */
  warmProcesses?: () => number;
  /** Jobs waiting, running and failed in the job runner. */
  jobQueue?: () => Promise<{ waiting: number; active: number; failed: number }>;
  /** Audit events buffered in memory, not yet written. */
  auditPending?: () => number;
  /** Audit events spilled to the disk spool while the database was slow or down. */
  auditSpooled?: () => number;
  /**
   * The latest health check of every registered server, read at scrape time: with Redis
   * the checks run in the workers process, so this process learns them from the database.
   * `latencyMs` undefined leaves the latency gauge as the last in-process check set it.
   */
  upstreamHealth?: () => Promise<
    { server: string; status: UpstreamHealthStatus; latencyMs?: number | null }[]
  >;
}

const OTHER = '_other';
/** Distinct values one label may take before new ones are folded into `_other`. */
const LABEL_VALUE_LIMIT = 500;
/** A scrape must not hang on a slow Redis (BullMQ depth); the gauge keeps its last value. */
const COLLECT_TIMEOUT_MS = 1_000;

const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const MCP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * Caps the distinct values of a label fed by callers (tool and method names come from MCP
 * clients, which may send anything): past the limit new values become `_other`, so a
 * hostile client cannot grow the registry without bound.
 */
class LabelGuard {
  readonly #seen = new Map<string, Set<string>>();
  readonly #limit: number;
  constructor(limit: number) {
    this.#limit = limit;
  }
  value(scope: string, value: string): string {
    let seen = this.#seen.get(scope);
    if (!seen) this.#seen.set(scope, (seen = new Set()));
    if (seen.has(value)) return value;
    if (seen.size >= this.#limit) return OTHER;
    seen.add(value);
    return value;
  }
}

/**
 * The route pattern of a request (`/api/servers/:slug`), never its raw path, so labels
 * stay few. Requests no route answered are grouped by area.
 */
export function routeLabel(req: Request): string {
  const route = (req as { route?: { path?: unknown } }).route;
  if (route && route.path !== undefined) {
    const params = Object.keys(req.params ?? {});
    const pattern = Array.isArray(route.path)
      ? // One route mounted on several paths (`['/mcp', '/mcp/:slug']`): the one whose
        // parameters are exactly the request's.
        (route.path.map(String).find((p) => {
          const names = [...p.matchAll(/[:*]([A-Za-z0-9_]+)/g)].map((m) => m[1]);
          return names.length === params.length && names.every((n) => params.includes(n!));
        }) ?? route.path.map(String).join('|'))
      : String(route.path);
    return `${req.baseUrl ?? ''}${pattern}`;
  }
  const path = req.originalUrl.split('?')[0] ?? '';
  for (const area of ['/api', '/mcp', '/.well-known', '/oauth', '/auth']) {
    if (path === area || path.startsWith(`${area}/`)) return `${area}/*`;
  }
  return 'other';
}

/**
 * The process's Prometheus metrics: one registry per instance (no global registry), so
 * several servers can run in one process (tests). Built in the composition root and
 * handed to whoever records something; `/metrics` renders `registry`.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #labels = new LabelGuard(LABEL_VALUE_LIMIT);
  #sources: MetricSources = {};
  #lastQueue = { waiting: 0, active: 0, failed: 0 };
  /** Servers with health series, so servers gone from the registry lose theirs. */
  readonly #healthServers = new Set<string>();
  /** One health read per scrape, shared by the three health gauges (collected in parallel). */
  #healthRead: { at: number; done: Promise<void> } | undefined;

  readonly #httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly #httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly #mcpRequests: Counter<'server' | 'method' | 'tool' | 'status'>;
  readonly #mcpDuration: Histogram<'server' | 'method' | 'tool' | 'status'>;
  readonly #upstreamUp: Gauge<'server'>;
  readonly #upstreamStatus: Gauge<'server' | 'status'>;
  readonly #upstreamLatency: Gauge<'server'>;
  readonly #rateLimited: Counter<'scope'>;
  readonly #tokenRefresh: Counter<'outcome'>;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.#httpRequests = new Counter({
      name: 'gateway_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.#httpDuration = new Histogram({
      name: 'gateway_http_request_duration_seconds',
      help: 'Time from receiving an HTTP request to the end of its response (SSE streams: until they close).',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.#mcpRequests = new Counter({
      name: 'gateway_mcp_requests_total',
      help: 'MCP requests through the gateway, by server, method, tool and outcome.',
      labelNames: ['server', 'method', 'tool', 'status'],
      registers,
    });
    this.#mcpDuration = new Histogram({
      name: 'gateway_mcp_request_duration_seconds',
      help: 'Time from an MCP request reaching the gateway to its answer, by server, method, tool and outcome.',
      labelNames: ['server', 'method', 'tool', 'status'],
      buckets: MCP_BUCKETS,
      registers,
    });
    const refreshHealth = () => this.#refreshHealth();
    this.#upstreamUp = new Gauge({
      name: 'gateway_upstream_up',
      help: '1 when the last health check reached the upstream MCP server (up or degraded), 0 when it was down.',
      labelNames: ['server'],
      registers,
      collect: refreshHealth,
    });
    this.#upstreamStatus = new Gauge({
      name: 'gateway_upstream_status',
      help: 'Health of each upstream MCP server: 1 for its current status, 0 for the others.',
      labelNames: ['server', 'status'],
      registers,
      collect: refreshHealth,
    });
    this.#upstreamLatency = new Gauge({
      name: 'gateway_upstream_check_latency_seconds',
      help: 'Round trip of the last health-check ping to each upstream MCP server.',
      labelNames: ['server'],
      registers,
      collect: refreshHealth,
    });
    this.#rateLimited = new Counter({
      name: 'gateway_rate_limit_rejections_total',
      help: 'Requests refused by a rate limit, by scope (ip, user, user_server, tool).',
      labelNames: ['scope'],
      registers,
    });
    this.#tokenRefresh = new Counter({
      name: 'gateway_token_refresh_total',
      help: 'Upstream OAuth token refreshes, by outcome.',
      labelNames: ['outcome'],
      registers,
    });
    const sources = () => this.#sources;
    new Gauge({
      name: 'gateway_mcp_sessions_active',
      help: 'Open downstream MCP sessions in this process.',
      registers,
      collect() {
        this.set(sources().sessions?.() ?? 0);
      },
    });
    new Gauge({
      name: 'gateway_stdio_warm_processes',
      help: 'Pre-started stdio upstream processes waiting in the warm pool.',
      registers,
      collect() {
        this.set(sources().warmProcesses?.() ?? 0);
      },
    });
    new Gauge({
      name: 'gateway_audit_buffered_events',
      help: 'Audit events held in memory, not yet written to the database.',
      registers,
      collect() {
        this.set(sources().auditPending?.() ?? 0);
      },
    });
    new Gauge({
      name: 'gateway_audit_spooled_events',
      help: 'Audit events spilled to the disk spool (DATA_DIR/audit-spool) because the database was slow or down.',
      registers,
      collect() {
        this.set(sources().auditSpooled?.() ?? 0);
      },
    });
    const lastQueue = () => this.#lastQueue;
    const setLastQueue = (q: { waiting: number; active: number; failed: number }) => (this.#lastQueue = q);
    new Gauge({
      name: 'gateway_job_queue_jobs',
      help: 'Background jobs by state (waiting, active, failed).',
      labelNames: ['state'],
      registers,
      async collect() {
        const read = sources().jobQueue;
        if (read) {
          let timer: NodeJS.Timeout | undefined;
          try {
            setLastQueue(
              await Promise.race([
                read(),
                new Promise<never>((_, reject) => {
                  timer = setTimeout(() => reject(new Error('timeout')), COLLECT_TIMEOUT_MS);
                }),
              ]),
            );
          } catch {
            // Keep the last known depth: a scrape must not fail because Redis is slow.
          } finally {
            clearTimeout(timer);
          }
        }
        const q = lastQueue();
        this.set({ state: 'waiting' }, q.waiting);
        this.set({ state: 'active' }, q.active);
        this.set({ state: 'failed' }, q.failed);
      },
    });
  }

  #refreshHealth(): Promise<void> {
    const read = this.#sources.upstreamHealth;
    if (!read) return Promise.resolve();
    if (this.#healthRead && Date.now() - this.#healthRead.at < 1_000) return this.#healthRead.done;
    let timer: NodeJS.Timeout | undefined;
    const done = Promise.race([
      read(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), COLLECT_TIMEOUT_MS);
      }),
    ])
      .then((checks) => {
        const present = new Set(checks.map((c) => c.server));
        for (const server of this.#healthServers) if (!present.has(server)) this.forgetUpstream(server);
        for (const c of checks) this.setUpstreamHealth(c.server, c.status, c.latencyMs);
      })
      .catch(() => {
        // Keep the last known health: a scrape must not fail because the database is slow.
      })
      .finally(() => clearTimeout(timer));
    this.#healthRead = { at: Date.now(), done };
    return done;
  }

  /** Attaches what the gauges read at scrape time (sessions, warm pool, job queue, audit buffer, health). */
  observe(sources: MetricSources): void {
    this.#sources = { ...this.#sources, ...sources };
  }

  /** Express middleware timing every request; mount it first so it sees every answer. */
  httpMiddleware(): RequestHandler {
    return (req, res, next) => {
      const started = process.hrtime.bigint();
      res.once('close', () => {
        const labels = {
          method: this.#labels.value('http_method', req.method),
          route: this.#labels.value('route', routeLabel(req)),
          status: String(res.statusCode),
        };
        this.#httpRequests.inc(labels);
        this.#httpDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      });
      next();
    };
  }

  /** Records one MCP request through the gateway (called from the gateway's audit hook). */
  recordMcpRequest(sample: McpRequestSample): void {
    const server = this.#labels.value('server', sample.server);
    const labels = {
      server,
      method: this.#labels.value('mcp_method', sample.method),
      tool: sample.tool ? this.#labels.value(`tool:${server}`, sample.tool) : '',
      status: sample.status,
    };
    this.#mcpRequests.inc(labels);
    this.#mcpDuration.observe(labels, Math.max(0, sample.latencyMs) / 1000);
  }

  /**
   * The health-check job's verdict on one upstream: sets `gateway_upstream_up{server}`,
   * `gateway_upstream_status{server,status}` and the ping latency (null: not reached;
   * undefined: leave it). `unknown` (not checked) removes the server's `up` and latency
   * series rather than claiming it is down.
   */
  setUpstreamHealth(server: string, status: UpstreamHealthStatus, latencyMs?: number | null): void {
    this.#healthServers.add(server);
    for (const s of ['up', 'degraded', 'down', 'unknown'] as const) {
      this.#upstreamStatus.set({ server, status: s }, s === status ? 1 : 0);
    }
    if (status === 'unknown') {
      this.#upstreamUp.remove({ server });
    } else {
      this.#upstreamUp.set({ server }, status === 'down' ? 0 : 1);
    }
    if (latencyMs === undefined && status !== 'unknown') return;
    if (latencyMs == null || status === 'unknown') this.#upstreamLatency.remove({ server });
    else this.#upstreamLatency.set({ server }, latencyMs / 1000);
  }

  /** Drops every health series of a server (it was deleted from the registry). */
  forgetUpstream(server: string): void {
    this.#healthServers.delete(server);
    this.#upstreamUp.remove({ server });
    this.#upstreamLatency.remove({ server });
    for (const status of ['up', 'degraded', 'down', 'unknown'])
      this.#upstreamStatus.remove({ server, status });
  }

  /** Counts one request refused by a rate limit. */
  recordRateLimitRejection(scope: string): void {
    this.#rateLimited.inc({ scope });
  }

  /**
   * Counts one upstream OAuth token refresh. Outcomes in use: `ok`, `failed` (network or
   * server error, retried later), `invalid_grant` (the user must reconnect), `skipped`.
   */
  recordTokenRefresh(outcome: string): void {
    this.#tokenRefresh.inc({ outcome: this.#labels.value('refresh_outcome', outcome) });
  }

  /** The Prometheus text exposition of every metric, and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
