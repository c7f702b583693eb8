import express, { type Express } from 'express';
import { sharedSecret, type OAuthServer } from './features/auth/index.ts';
import { HealthService } from './features/health/index.ts';
import { syncCatalogFile } from './features/registry/index.ts';
import type { Config } from './platform/config/config.ts';
import { listen, type RunningHttpServer } from './platform/http/http-server.ts';
import { loadTls } from './platform/http/tls.ts';
import type { Logger } from './platform/logging/logger.ts';
import { Metrics } from './platform/metrics/metrics.ts';
import { pingRedis } from './platform/redis/redis.ts';
import { startTracing } from './platform/telemetry/tracing.ts';
import { wireRoutes } from './routes.ts';
import { openCore, type Core } from './runtime.core.ts';
import { buildServices, queueRewrapIfNeeded, type Services } from './runtime.services.ts';
import { VERSION } from './platform/version.ts';

// The composition root: runtime.core.ts opens the infrastructure, runtime.services.ts builds
// the feature services and their jobs, routes.ts wires the HTTP side. The workers process and
// the maintenance scripts take the first two from here.
export { openCore, type Core } from './runtime.core.ts';
export {
  buildServices,
  openVault,
  sealedStores,
  type ServiceHooks,
  type Services,
} from './runtime.services.ts';

export interface RunningServer {
  readonly url: string;
  /** The admin API key generated on first start (when ADMIN_BOOTSTRAP_TOKEN is unset); print it once. */
  readonly generatedAdminKey: string | undefined;
  readonly services: Services;
  readonly core: Core;
  readonly http: RunningHttpServer;
  /** The gateway's OAuth authorization server (issuer = `publicUrl`). */
  readonly oauth: OAuthServer;
  /** The URL users and clients reach the gateway at (PUBLIC_URL, or the listening URL). */
  readonly publicUrl: string;
  /** Flushes the spans recorded so far to the OTLP endpoint (nothing when tracing is off). */
  flushTraces(): Promise<void>;
  /** Graceful stop: not ready, stop accepting, drain requests and jobs, close pools. */
  stop(): Promise<void>;
}

/** Starts the HTTP process: core services, job runner, express app, listening socket. */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  // Bad certificate files stop start-up before anything is opened.
  const tls = config.http.tls ? await loadTls(config.http.tls) : undefined;
  if (tls && tls.validTo.getTime() < Date.now()) {
    logger.warn({ validTo: tls.validTo.toISOString() }, 'the TLS certificate in TLS_CERT_FILE has expired');
  }
  const metrics = new Metrics();
  // Before anything that makes spans; flushed last on stop, after the work it traced.
  const tracing = startTracing(config.telemetry, { role: 'server', version: VERSION }, logger);
  let core: Core;
  try {
    core = await openCore(config, logger, { role: 'server' });
  } catch (err) {
    await tracing?.shutdown();
    throw err;
  }
  const probes: Record<string, () => Promise<void>> = { database: () => core.database.ping() };
  if (core.redis) {
    const redis = core.redis;
    probes['redis'] = () => pingRedis(redis);
  }
  const health = new HealthService({ probes, version: VERSION });
  let http: RunningHttpServer | undefined;
  let services: Services;
  let servicesIfBuilt: Services | undefined;
  let generatedAdminKey: string | undefined;
  let publicUrl = '';
  let oauth: OAuthServer;
  let chatSocket: { close(): Promise<void> } | undefined;
  let forwarder: { close(): void } | undefined;
  try {
    services = await buildServices(core, {
      metrics,
      onUpstreamStatus: (slug, status, latencyMs) => metrics.setUpstreamHealth(slug, status, latencyMs),
    });
    servicesIfBuilt = services;
    const observed = services;
    metrics.observe({
      sessions: () => observed.gateway.sessionCount,
      warmProcesses: () => observed.gateway.warmProcesses,
      jobQueue: () => core.runner.depth(),
      auditPending: () => observed.audit.pendingDetail.buffered,
      auditSpooled: () => observed.audit.pendingDetail.spooled,
      // With Redis the health checks run in the workers process: read their verdicts back
      // (in-process, the onUpstreamStatus hook above sets them as each check ends).
      ...(core.runner.kind === 'bullmq'
        ? {
            upstreamHealth: async () => {
              const [statuses, servers] = await Promise.all([
                observed.upstreamHealth.statusesById(),
                observed.registry.list(),
              ]);
              return servers.map((s) => ({ server: s.slug, status: statuses.get(s.id) ?? 'unknown' }));
            },
          }
        : {}),
    });
    if (config.gateway.serversFile) {
      await syncCatalogFile(config.gateway.serversFile, services.registry, logger);
    }
    await core.runner.start();
    if (config.secrets.rewrapOnStart) await queueRewrapIfNeeded(core, services.rotation);
    // Listen first: the OAuth issuer is the public URL, which may be the listening one.
    // eslint-disable-next-line prefer-const -- assigned once the app is built; the listener closes over it
    let inner: Express | undefined;
    const root = express();
    root.use((req, res, next) => (inner ? inner(req, res, next) : res.status(503).end()));
    http = await listen(root, config.http.host, config.http.port, tls);
    publicUrl = config.http.publicUrl ?? http.url;
    services.upstreamOAuth.setPublicUrl(publicUrl);
    const sessionSecret =
      config.identity.sessionSecret ??
      (await sharedSecret(services.authRepo, services.vault, 'session-secret'));
    // Several replicas (Redis): this one's address and the hop secret, for the session directory.
    const internalSecret = services.sessionDirectory
      ? (config.replicas.internalSecret ??
        (await sharedSecret(services.authRepo, services.vault, 'internal-secret')))
      : undefined;
    services.sessionDirectory?.start(config.replicas.replicaUrl ?? http.url);
    const wired = await wireRoutes({
      config,
      logger,
      core,
      services,
      metrics,
      health,
      publicUrl,
      http,
      sessionSecret,
      internalSecret,
    });
    oauth = wired.oauth;
    chatSocket = wired.chatSocket;
    forwarder = wired.forwarder;
    // Last, once nothing can fail: a key generated by a start that then failed (a port in
    // use) would exist but never be shown, and every later start would find it and stay silent.
    const bootstrap = await services.keys.ensureBootstrapAdmin(config.secrets.adminBootstrapToken);
    generatedAdminKey = bootstrap.generatedKey;
    inner = wired.app;
  } catch (err) {
    await chatSocket?.close().catch(() => {});
    await http?.close(100).catch(() => {});
    await servicesIfBuilt?.gateway.close().catch(() => {});
    await servicesIfBuilt?.sessionDirectory?.close().catch(() => {});
    await core.runner.stop(1_000).catch(() => {});
    await core.close();
    await tracing?.shutdown();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  const listening = http;
  return {
    url: listening.url,
    publicUrl,
    oauth,
    generatedAdminKey,
    services,
    core,
    http: listening,
    flushTraces: async () => tracing?.forceFlush(),
    stop() {
      stopping ??= (async () => {
        const budget = config.shutdownTimeoutMs;
        const started = Date.now();
        health.markShuttingDown();
        // Chat turns store what they have; sockets and gateway sessions would otherwise hold
        // the listener open (open SSE streams and websockets).
        await services.chat.stop(Math.max(100, budget * 0.2));
        await chatSocket?.close();
        await services.gateway.close();
        // The sessions are gone: so are their directory entries (clients re-initialize elsewhere).
        await services.sessionDirectory?.close();
        await listening.close(Math.max(100, budget * 0.6));
        forwarder?.close();
        await core.runner.stop(Math.max(100, budget - (Date.now() - started) - 1_000));
        services.access.stop();
        await services.audit.stop(Math.max(100, budget - (Date.now() - started) - 300));
        await core.close();
        await tracing?.shutdown();
      })();
      return stopping;
    },
  };
}
