import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router } from 'express';
import type { Redis } from 'ioredis';
import { AccessService } from './features/access/index.ts';
import { AuditRepository, auditRoutes, AuditService } from './features/audit/index.ts';
import { requireAuth } from './features/auth/index.ts';
import { CredentialsRepository, CredentialsService } from './features/credentials/index.ts';
import { Gateway, gatewayRoutes } from './features/gateway/index.ts';
import { healthRoutes, HealthService } from './features/health/index.ts';
import { KeysRepository, keysRoutes, KeysService } from './features/keys/index.ts';
import { RegistryRepository, registryRoutes, RegistryService, syncCatalogFile } from './features/registry/index.ts';
import { UsersRepository } from './features/users/index.ts';
import { loadOrCreateLocalKey, parseMasterKey, Vault } from './platform/crypto/vault.ts';
import { defineMaintenanceJobs, MaintenanceRepository } from './features/maintenance/index.ts';
import type { Config } from './platform/config/config.ts';
import { openDatabase, type DatabaseHandle } from './platform/db/database.ts';
import { createApp } from './platform/http/app.ts';
import { listen, type RunningHttpServer } from './platform/http/http-server.ts';
import { BullMqJobRunner } from './platform/jobs/bullmq.runner.ts';
import { InProcessJobRunner } from './platform/jobs/inprocess.runner.ts';
import { JobRegistry, type JobRunner } from './platform/jobs/job.registry.ts';
import type { Logger } from './platform/logging/logger.ts';
import { assertUrlAllowed, createGuardedFetch } from './platform/net/ssrf.ts';
import { connectRedis, pingRedis } from './platform/redis/redis.ts';
import { VERSION } from './version.ts';

const DEFAULT_CLIENT_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../client/dist');

/** Everything the processes share: database, Redis, the job registry and its runner. */
export interface Core {
  readonly config: Config;
  readonly logger: Logger;
  readonly database: DatabaseHandle;
  readonly redis: Redis | undefined;
  readonly jobs: JobRegistry;
  readonly runner: JobRunner;
  close(): Promise<void>;
}

/**
 * Opens the database (migrating it), Redis when configured, and builds the job registry
 * with the runner this process uses. `consumeJobs` is true in the workers process and, on
 * the embedded default, in the server (its in-process runner).
 */
export async function openCore(
  config: Config,
  logger: Logger,
  options: { role: 'server' | 'workers' },
): Promise<Core> {
  const database = await openDatabase(config.database, logger);
  let redis: Redis | undefined;
  try {
    redis = config.redis
      ? await connectRedis(config.redis.url, logger, { name: `mcp-gateway-${options.role}` })
      : undefined;
  } catch (err) {
    await database.close();
    throw err;
  }
  const jobs = new JobRegistry();
  defineMaintenanceJobs(jobs, {
    repository: new MaintenanceRepository(database.db),
    heartbeatIntervalMs: config.jobs.heartbeatIntervalMs,
  });
  jobs.assertComplete();
  const runner: JobRunner =
    redis && config.redis
      ? new BullMqJobRunner(jobs, {
          redis,
          prefix: config.redis.prefix,
          consume: options.role === 'workers',
          concurrency: config.jobs.concurrency,
          logger,
        })
      : new InProcessJobRunner(jobs, { logger, concurrency: config.jobs.concurrency });
  return {
    config,
    logger,
    database,
    redis,
    jobs,
    runner,
    async close() {
      redis?.disconnect();
      await database.close();
    },
  };
}

/** The services behind the REST API and the gateway, built over an open Core. */
export interface Services {
  readonly audit: AuditService;
  readonly vault: Vault;
  readonly credentials: CredentialsService;
  readonly registry: RegistryService;
  readonly users: UsersRepository;
  readonly keys: KeysService;
  readonly access: AccessService;
  readonly gateway: Gateway;
}

/** Builds the feature services (no listening, no background work besides audit batching). */
export async function buildServices(core: Core): Promise<Services> {
  const { config, logger, database } = core;
  const db = database.db;
  const audit = new AuditService(new AuditRepository(db), {
    logger,
    batchSize: config.audit.batchSize,
    flushIntervalMs: config.audit.flushIntervalMs,
  });
  const masterKey = config.secrets.encryptionKey
    ? parseMasterKey(config.secrets.encryptionKey)
    : await loadOrCreateLocalKey(config.dataDir, logger);
  const vault = new Vault([masterKey, ...config.secrets.previousKeys.map(parseMasterKey)]);
  const credentials = new CredentialsService(new CredentialsRepository(db), vault, audit);
  const policy = config.upstream;
  const registry = new RegistryService({
    repo: new RegistryRepository(db),
    credentials,
    audit,
    logger,
    guardUrl: (url) => assertUrlAllowed(url, policy),
  });
  const users = new UsersRepository(db);
  const keys = new KeysService(new KeysRepository(db), users, logger);
  const access = new AccessService();
  const publicOrigins = config.http.publicUrl ? [new URL(config.http.publicUrl).origin] : [];
  const gateway = new Gateway({
    config: config.gateway,
    publicOrigins,
    logger,
    registry,
    access,
    credentials,
    audit,
    upstreamFetch: createGuardedFetch(policy, { timeoutMs: config.gateway.connectTimeoutMs }),
    guardUrl: (url) => assertUrlAllowed(url, policy),
  });
  registry.setDiscoverer((server, principal) => gateway.discover(server, principal));
  return { audit, vault, credentials, registry, users, keys, access, gateway };
}

export interface RunningServer {
  readonly url: string;
  /** The admin API key generated on first start (when ADMIN_BOOTSTRAP_TOKEN is unset); print it once. */
  readonly generatedAdminKey: string | undefined;
  readonly services: Services;
  readonly core: Core;
  readonly http: RunningHttpServer;
  /** Graceful stop: not ready, stop accepting, drain requests and jobs, close pools. */
  stop(): Promise<void>;
}

/** Starts the HTTP process: core services, job runner, express app, listening socket. */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const core = await openCore(config, logger, { role: 'server' });
  const probes: Record<string, () => Promise<void>> = { database: () => core.database.ping() };
  if (core.redis) {
    const redis = core.redis;
    probes['redis'] = () => pingRedis(redis);
  }
  const health = new HealthService({ probes, version: VERSION });
  let http: RunningHttpServer;
  let services: Services;
  let generatedAdminKey: string | undefined;
  try {
    services = await buildServices(core);
    const bootstrap = await services.keys.ensureBootstrapAdmin(config.secrets.adminBootstrapToken);
    generatedAdminKey = bootstrap.generatedKey;
    if (config.gateway.serversFile) {
      await syncCatalogFile(config.gateway.serversFile, services.registry, logger);
    }
    await core.runner.start();
    const mcp = gatewayRoutes({
      gateway: services.gateway,
      authenticators: [services.keys],
      audit: services.audit,
      bodyLimit: config.http.bodyLimit,
      publicOrigins: services.gateway.deps.publicOrigins,
      allowedOrigins: config.gateway.allowedOrigins,
    });
    const api = Router();
    api.use('/api', requireAuth({ authenticators: [services.keys], audit: services.audit }));
    api.use(registryRoutes(services));
    api.use(keysRoutes(services));
    api.use(auditRoutes(services.audit));
    const app = createApp({
      logger,
      bodyLimit: config.http.bodyLimit,
      trustProxy: config.http.trustProxy,
      clientDistDir: config.http.clientDistDir ?? DEFAULT_CLIENT_DIST,
      routers: [healthRoutes(health), mcp, api],
    });
    http = await listen(app, config.http.host, config.http.port);
  } catch (err) {
    await services!?.gateway.close().catch(() => {});
    await core.runner.stop(1_000).catch(() => {});
    await core.close();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    url: http.url,
    generatedAdminKey,
    services,
    core,
    http,
    stop() {
      stopping ??= (async () => {
        const budget = config.shutdownTimeoutMs;
        const started = Date.now();
        health.markShuttingDown();
        // Sessions first: their open SSE streams would otherwise hold the listener open.
        await services.gateway.close();
        await http.close(Math.max(100, budget * 0.6));
        await core.runner.stop(Math.max(100, budget - (Date.now() - started) - 1_000));
        await services.audit.stop(Math.max(100, budget - (Date.now() - started) - 300));
        await core.close();
      })();
      return stopping;
    },
  };
}
