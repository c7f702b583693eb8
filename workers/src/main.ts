// The workers process: consumes the BullMQ queue (REDIS_URL required). Serves no API; its
// only listener is GET /metrics and /healthz for Prometheus (WORKERS_METRICS_PORT, 0: none).
import express from 'express';
import { loadConfig } from '@gateway/server/platform/config/config.ts';
import { listen, type RunningHttpServer } from '@gateway/server/platform/http/http-server.ts';
import { createLogger } from '@gateway/server/platform/logging/logger.ts';
import { Metrics } from '@gateway/server/platform/metrics/metrics.ts';
import { metricsRoutes } from '@gateway/server/platform/metrics/metrics.routes.ts';
import { runProcess } from '@gateway/server/platform/process.ts';
import { startTracing } from '@gateway/server/platform/telemetry/tracing.ts';
import { VERSION } from '@gateway/server/platform/version.ts';
import { buildServices, openCore, type Services } from '@gateway/server/runtime.ts';

await runProcess('workers', async () => {
  const config = loadConfig(process.env);
  if (!config.redis) {
    throw new Error(
      'REDIS_URL is not set: without Redis the server runs jobs itself and no workers process is needed',
    );
  }
  if (config.database.kind === 'pglite') {
    throw new Error(
      'DATABASE_URL is not set: the workers process shares a PostgreSQL database with the servers (the embedded PGlite database belongs to the server process alone)',
    );
  }
  const logger = createLogger({ level: config.log.level, name: 'workers' });
  // Each job run is a trace (when OTEL_EXPORTER_OTLP_ENDPOINT is set); flushed last on stop.
  const tracing = startTracing(config.telemetry, { role: 'workers', version: VERSION }, logger);
  const core = await openCore(config, logger, { role: 'workers' }).catch(async (err: unknown) => {
    await tracing?.shutdown();
    throw err;
  });
  // The jobs that run here (token refreshes, health checks) count into this process's own
  // metrics, which only its own listener can show.
  const metrics = new Metrics();
  // The same feature services as the server (registry, credentials, gateway, audit): job
  // handlers call them, and buildServices defines the jobs that need them.
  let services: Services | undefined;
  let http: RunningHttpServer | undefined;
  try {
    services = await buildServices(core, {
      metrics,
      onUpstreamStatus: (slug, status, latencyMs) => metrics.setUpstreamHealth(slug, status, latencyMs),
    });
    const observed = services;
    metrics.observe({
      jobQueue: () => core.runner.depth(),
      auditPending: () => observed.audit.pendingDetail.buffered,
      auditSpooled: () => observed.audit.pendingDetail.spooled,
    });
    if (config.metrics.workersPort) {
      const app = express();
      app.disable('x-powered-by');
      app.get('/healthz', (_req, res) => {
        res.json({ status: 'ok' });
      });
      app.use(metricsRoutes(metrics, { token: config.metrics.token }));
      app.use((_req, res) => {
        res.status(404).json({
          error: { code: 'not_found', message: 'the workers process serves only /metrics and /healthz' },
        });
      });
      http = await listen(app, config.http.host, config.metrics.workersPort);
    }
    await core.runner.start();
  } catch (err) {
    await http?.close(1_000);
    await core.runner.stop(1_000).catch(() => {});
    services?.access.stop();
    await services?.audit.stop(1_000).catch(() => {});
    await core.close();
    await tracing?.shutdown();
    throw err;
  }
  const running = services;
  const listener = http;
  logger.info(
    { database: core.database.kind, metrics: listener ? `${listener.url}/metrics` : 'off' },
    'workers consuming jobs',
  );
  return {
    timeoutMs: config.shutdownTimeoutMs,
    logger,
    async stop() {
      const started = Date.now();
      const budget = config.shutdownTimeoutMs;
      await core.runner.stop(Math.max(100, budget - 1_000));
      await listener?.close(500);
      await running.gateway.close();
      running.access.stop();
      await running.audit.stop(Math.max(100, budget - (Date.now() - started) - 300));
      await core.close();
      await tracing?.shutdown();
    },
  };
});
