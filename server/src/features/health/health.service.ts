import type { Liveness, Readiness } from '@gateway/shared';

/** A named dependency probe; rejects when the dependency is not usable. */
export type ReadinessProbe = () => Promise<void>;

/**
 * Liveness and readiness. Readiness runs every probe in parallel with a deadline, so a
 * hung dependency makes the gateway "not ready" instead of hanging the health check.
 */
export class HealthService {
  readonly #probes: Record<string, ReadinessProbe>;
  readonly #version: string;
  readonly #startedAt = Date.now();
  readonly #timeoutMs: number;
  #shuttingDown = false;

  constructor(options: { probes: Record<string, ReadinessProbe>; version: string; timeoutMs?: number }) {
    this.#probes = options.probes;
    this.#version = options.version;
    this.#timeoutMs = options.timeoutMs ?? 3_000;
  }

  /** From now on readiness fails, so load balancers stop sending traffic while we drain. */
  markShuttingDown(): void {
    this.#shuttingDown = true;
  }

  liveness(): Liveness {
    return {
      status: 'ok',
      version: this.#version,
      uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
    };
  }

  async readiness(): Promise<Readiness> {
    const entries = await Promise.all(
      Object.entries(this.#probes).map(async ([name, probe]) => {
        const started = performance.now();
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            probe(),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`no answer within ${this.#timeoutMs} ms`)),
                this.#timeoutMs,
              );
            }),
          ]);
          return [name, { ok: true, latencyMs: Math.round(performance.now() - started) }] as const;
        } catch (err) {
          const error = ((err as Error).message || 'unavailable').replace(/\w+:\/\/\S+/g, '<url>');
          return [name, { ok: false, latencyMs: Math.round(performance.now() - started), error }] as const;
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const checks: Readiness['checks'] = Object.fromEntries(entries);
    if (this.#shuttingDown) {
      checks['shutdown'] = { ok: false, latencyMs: 0, error: 'shutting down' };
    }
    const ready = Object.values(checks).every((c) => c.ok);
    return { status: ready ? 'ready' : 'not_ready', checks };
  }
}
