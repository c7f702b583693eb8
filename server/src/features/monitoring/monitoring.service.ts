import type { Capabilities, UpstreamHealthCheck, UpstreamHealthView, UpstreamStatus } from '@gateway/shared';
import { Snapshot } from '../../platform/cache/snapshot.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { RegistryService, ServerRecord } from '../registry/index.ts';
import type { HealthCheckInsert, HealthCheckRow, MonitoringRepository } from './monitoring.repository.ts';

/** What one probe of an upstream learned. It rejects when the upstream cannot be connected or pinged. */
export interface HealthProbeResult {
  /** Round trip of the MCP `ping`. */
  latencyMs: number;
  /** The refreshed capability list, when listing worked. */
  capabilities?: Capabilities | undefined;
  /** Why listing the capabilities failed (the server answered ping, so it is `degraded`). */
  capabilitiesError?: string | undefined;
}

/**
 * Connects to `server` with no user credentials on a fresh upstream (never a user's warm
 * one), pings it and lists its capabilities, then disconnects. Provided by the gateway.
 */
export type HealthProber = (
  server: ServerRecord,
  options: { timeoutMs: number },
) => Promise<HealthProbeResult>;

/** Told about every check's outcome, e.g. to set a metrics gauge. Must not throw (errors are logged). */
export type HealthStatusListener = (slug: string, status: UpstreamStatus, latencyMs: number | null) => void;

/** Tuning of the health checks (from HEALTH_* configuration). */
export interface HealthCheckSettings {
  /** How often the job runs; also decides when a recorded `down` is too old to trust. */
  readonly intervalMs: number;
  /** Budget of each step of a check: connect, ping, capability listing. */
  readonly timeoutMs: number;
  /** A ping slower than this makes an answering server `degraded`. */
  readonly degradedMs: number;
  /** Checks kept per server. */
  readonly historySize: number;
}

/** Outcome of one run of the health-check job. */
export interface HealthRunSummary {
  checked: number;
  byStatus: Record<UpstreamStatus, number>;
}

/** The latest check of one server. */
interface Latest {
  status: UpstreamStatus;
  latencyMs: number | null;
  error: string | null;
  checkedAt: Date;
}

/** Servers checked at once: enough for a catalog of dozens, without a spawn storm of stdio servers. */
const PARALLEL_CHECKS = 8;
/** Checks shown by GET /api/servers/{slug}/health. */
const HISTORY_SHOWN = 20;

/** An error message safe to store and show: one line, capped, URL queries (which may hold keys) cut off. */
function safeError(err: unknown): string {
  const message = (err as Error)?.message || String(err) || 'unknown error';
  return (
    message
      .split('\n')[0]!
      .replace(/\b(https?:\/\/[^\s?#]+)[?#]\S*/gi, '$1?…')
      .slice(0, 500) || 'unknown error'
  );
}

/** Declared credential fields each user must supply: without them the server cannot be probed. */
function requiredUserFields(server: ServerRecord): string[] {
  return server.credentialFields.filter((f) => f.required).map((f) => f.name);
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Upstream health: runs the checks (from the `health.check` job, in whichever process runs
 * jobs), records them with a bounded history, logs status changes, and answers "which
 * servers are down" for the aggregate endpoint. Statuses are read back from the database
 * (cached briefly), so a server process sees the checks a separate workers process made.
 */
export class UpstreamHealthService {
  readonly #repo: MonitoringRepository;
  readonly #registry: RegistryService;
  readonly #logger: Logger;
  readonly #settings: HealthCheckSettings;
  readonly #onStatus: HealthStatusListener | undefined;
  readonly #latestChecks: Snapshot<Map<string, Latest>>;

  constructor(deps: {
    repo: MonitoringRepository;
    registry: RegistryService;
    logger: Logger;
    settings: HealthCheckSettings;
    /** Hook for metrics: called after every check with the server's slug, status and ping latency. */
    onStatus?: HealthStatusListener | undefined;
  }) {
    this.#repo = deps.repo;
    this.#registry = deps.registry;
    this.#logger = deps.logger.child({ feature: 'monitoring' });
    this.#settings = deps.settings;
    this.#onStatus = deps.onStatus;
    // Short enough that a check made by the workers process shows within a fraction of an
    // interval; long enough that a burst of aggregate sessions costs one query.
    this.#latestChecks = new Snapshot(() => this.#loadLatest(), {
      ttlMs: Math.min(5_000, Math.floor(deps.settings.intervalMs / 2)),
    });
  }

  /**
   * Checks every enabled server (or the one named), records the results, refreshes the
   * cached capability lists, logs status changes and prunes old checks.
   */
  async runChecks(
    probe: HealthProber,
    options: { slug?: string | undefined } = {},
  ): Promise<HealthRunSummary> {
    // Another process may have changed the catalog since this process last read it.
    this.#registry.invalidate();
    const servers = (await this.#registry.list()).filter(
      (s) => s.enabled && (options.slug === undefined || s.slug === options.slug),
    );
    const previous = await this.#loadLatest();
    const byStatus: Record<UpstreamStatus, number> = { up: 0, degraded: 0, down: 0, unknown: 0 };
    let checked = 0;
    let next = 0;
    const worker = async () => {
      while (next < servers.length) {
        const server = servers[next++]!;
        const { row, capabilities } = await this.#checkOne(server, probe);
        // Recorded as soon as it is known: one slow server does not delay the others' status.
        if (await this.#record(server, previous.get(server.id)?.status, row, capabilities)) {
          byStatus[row.status]++;
          checked++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_CHECKS, servers.length) }, worker));
    await this.#repo.prune(this.#settings.historySize);
    this.#latestChecks.invalidate();
    return { checked, byStatus };
  }

  /** Stores one check, logs a status change, tells the listener, refreshes the capabilities. */
  async #record(
    server: ServerRecord,
    from: UpstreamStatus | undefined,
    row: HealthCheckInsert,
    capabilities: Capabilities | undefined,
  ): Promise<boolean> {
    try {
      await this.#repo.insert(row);
    } catch (err) {
      // Typically the server was deleted while it was being checked (its rows go with it).
      this.#logger.warn({ server: server.slug, err: safeError(err) }, 'could not record a health check');
      return false;
    }
    this.#latestChecks.invalidate();
    this.#logTransition(server.slug, from, row);
    try {
      this.#onStatus?.(server.slug, row.status, row.latencyMs ?? null);
    } catch (err) {
      this.#logger.warn({ err: safeError(err) }, 'health status listener failed');
    }
    if (capabilities) {
      await this.#registry.recordCapabilities(server.slug, capabilities).catch((err: unknown) => {
        this.#logger.warn({ server: server.slug, err: safeError(err) }, 'could not store capabilities');
      });
    }
    return true;
  }

  async #checkOne(
    server: ServerRecord,
    probe: HealthProber,
  ): Promise<{ row: HealthCheckInsert; capabilities?: Capabilities | undefined }> {
    const checkedAt = new Date();
    const required = requiredUserFields(server);
    if (required.length || server.oauth) {
      return {
        row: {
          serverId: server.id,
          status: 'unknown',
          latencyMs: null,
          error: server.oauth
            ? 'not checked: every user connects their own account with OAuth; no credential to check with'
            : `not checked: every user supplies ${required.join(', ')}; no credential to check with`,
          checkedAt,
        },
      };
    }
    const { timeoutMs, degradedMs } = this.#settings;
    try {
      // Each step has its own timeout inside the probe; this is the backstop for a probe
      // that hangs outside those steps (a spawn that never completes, a stuck close).
      const r = await withDeadline(probe(server, { timeoutMs }), timeoutMs * 3 + 1_000, 'health check');
      const latencyMs = Math.round(r.latencyMs);
      const error = r.capabilitiesError
        ? `capability listing failed: ${safeError(r.capabilitiesError)}`
        : latencyMs > degradedMs
          ? `ping took ${latencyMs} ms (over ${degradedMs} ms)`
          : null;
      return {
        row: { serverId: server.id, status: error ? 'degraded' : 'up', latencyMs, error, checkedAt },
        capabilities: r.capabilities,
      };
    } catch (err) {
      return {
        row: { serverId: server.id, status: 'down', latencyMs: null, error: safeError(err), checkedAt },
      };
    }
  }

  #logTransition(slug: string, from: UpstreamStatus | undefined, row: HealthCheckInsert) {
    if (from === row.status) return;
    const fields = {
      server: slug,
      from: from ?? 'none',
      to: row.status,
      latencyMs: row.latencyMs,
      error: row.error,
    };
    if (row.status === 'down') this.#logger.warn(fields, `upstream ${slug} is down`);
    else this.#logger.info(fields, `upstream ${slug} is ${row.status}`);
  }

  async #loadLatest(): Promise<Map<string, Latest>> {
    const rows = await this.#repo.latestPerServer();
    return new Map(rows.map((r) => [r.serverId, toLatest(r)]));
  }

  #latest(): Promise<Map<string, Latest>> {
    return this.#latestChecks.get();
  }

  /**
   * Slugs of servers whose latest check says `down`. A check older than three intervals is
   * not trusted (the job may have stopped), so a server is never left out forever. When
   * the statuses cannot be read, nothing is left out: the aggregate endpoint tolerates
   * upstreams that are down anyway.
   */
  async downSlugs(): Promise<ReadonlySet<string>> {
    try {
      const latest = await this.#latest();
      const cutoff = Date.now() - 3 * this.#settings.intervalMs - 3 * this.#settings.timeoutMs;
      const down = new Set<string>();
      for (const server of await this.#registry.list()) {
        const l = latest.get(server.id);
        if (l?.status === 'down' && l.checkedAt.getTime() >= cutoff) down.add(server.slug);
      }
      return down;
    } catch (err) {
      this.#logger.warn({ err: safeError(err) }, 'could not read upstream health; leaving no server out');
      return new Set();
    }
  }

  /** The latest status of each server (by id), for list views; `unknown` when never checked. */
  async statusesById(): Promise<ReadonlyMap<string, UpstreamStatus>> {
    const latest = await this.#latest();
    return new Map([...latest].map(([id, l]) => [id, l.status]));
  }

  /** `GET /api/servers/{slug}/health`: the latest check and the recent ones, newest first. */
  async view(server: Pick<ServerRecord, 'id' | 'slug'>): Promise<UpstreamHealthView> {
    const rows = await this.#repo.history(server.id, HISTORY_SHOWN);
    const history: UpstreamHealthCheck[] = rows.map((r) => ({
      status: r.status,
      latencyMs: r.latencyMs,
      error: r.error,
      checkedAt: r.checkedAt.toISOString(),
    }));
    const last = history[0];
    return {
      server: server.slug,
      status: last?.status ?? 'unknown',
      checkedAt: last?.checkedAt ?? null,
      latencyMs: last?.latencyMs ?? null,
      error: last ? last.error : 'not checked yet',
      history,
    };
  }
}

function toLatest(r: HealthCheckRow): Latest {
  return { status: r.status, latencyMs: r.latencyMs, error: r.error, checkedAt: r.checkedAt };
}
