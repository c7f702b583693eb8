import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type Express } from 'express';
import type { Redis } from 'ioredis';
import { AccessRepository, accessRoutes, AccessService } from './features/access/index.ts';
import {
  AuditRepository,
  auditRoutes,
  AuditService,
  AuditTrail,
  defineAuditJobs,
} from './features/audit/index.ts';
import {
  AuthRepository,
  authApiRoutes,
  OAuthGrantStatus,
  OAuthServer,
  requireAuth,
  settingsSealedStore,
  sharedSecret,
  WebAuth,
} from './features/auth/index.ts';
import {
  CredentialsRepository,
  CredentialsRotation,
  CredentialsService,
  credentialsSealedStore,
  type SealedStore,
  defineCredentialsJobs,
  InProcessLock,
  keyRotationRoutes,
  pendingAuthorizationsSealedStore,
  RedisLock,
  upstreamOAuthRoutes,
  UpstreamOAuthService,
} from './features/credentials/index.ts';
import { attachChatSocket, ChatRepository, chatRoutes, ChatService } from './features/chat/index.ts';
import { Gateway, gatewayRoutes } from './features/gateway/index.ts';
import { healthRoutes, HealthService } from './features/health/index.ts';
import { KeysRepository, keysRoutes, KeysService } from './features/keys/index.ts';
import { ipRateLimit, mcpRateLimit, RateLimitService, userRateLimit } from './features/ratelimit/index.ts';
import {
  defineMonitoringJobs,
  MonitoringRepository,
  monitoringRoutes,
  UpstreamHealthService,
  type HealthStatusListener,
} from './features/monitoring/index.ts';
import {
  RegistryRepository,
  registryRoutes,
  RegistryService,
  syncCatalogFile,
} from './features/registry/index.ts';
import { UsersRepository, usersRoutes } from './features/users/index.ts';
import { loadOrCreateLocalKey, parseMasterKey, Vault } from './platform/crypto/vault.ts';
import { defineMaintenanceJobs, MaintenanceRepository } from './features/maintenance/index.ts';
import type { Config } from './platform/config/config.ts';
import { openDatabase, type Database, type DatabaseHandle } from './platform/db/database.ts';
import { createApp } from './platform/http/app.ts';
import { listen, type RunningHttpServer } from './platform/http/http-server.ts';
import { HostPolicy, requireAllowedHost } from './platform/http/hosts.ts';
import { httpsOnly, loadTls } from './platform/http/tls.ts';
import { BullMqJobRunner } from './platform/jobs/bullmq.runner.ts';
import { InProcessJobRunner } from './platform/jobs/inprocess.runner.ts';
import { JobRegistry, type JobRunner } from './platform/jobs/job.registry.ts';
import type { Logger } from './platform/logging/logger.ts';
import { Metrics } from './platform/metrics/metrics.ts';
import { metricsRoutes } from './platform/metrics/metrics.routes.ts';
import { assertUrlAllowed, createGuardedFetch } from './platform/net/ssrf.ts';
import { LocalChangeFeed, RedisChangeFeed, type ChangeFeed } from './platform/redis/changes.ts';
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
  /** Tells the deployment's other processes what to reload (Redis pub/sub; nothing without Redis). */
  readonly changes: ChangeFeed;
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
  defineAuditJobs(jobs, {
    trail: new AuditTrail(new AuditRepository(database.db), {
      logger,
      retentionDays: config.audit.retentionDays,
      exportDir: config.audit.exportDir,
    }),
    exportEnabled: config.audit.exportDir !== undefined,
    exportEveryMs: config.audit.exportIntervalMs,
  });
  // Jobs that need feature services (health checks, re-wrap) are defined by buildServices,
  // which both processes call; runner.start() fails when a declared job has no handler.
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
  const changes: ChangeFeed =
    redis && config.redis ? new RedisChangeFeed(redis, config.redis.prefix, logger) : new LocalChangeFeed();
  return {
    config,
    logger,
    database,
    redis,
    jobs,
    runner,
    changes,
    async close() {
      await changes.close();
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
  readonly upstreamHealth: UpstreamHealthService;
  readonly rotation: CredentialsRotation;
  readonly authRepo: AuthRepository;
  /** Users' connections to upstream servers that require OAuth (tokens, refresh job). */
  readonly upstreamOAuth: UpstreamOAuthService;
  /** Chat threads and the agent (its turns run in the server process). */
  readonly chat: ChatService;
}

/** Hooks into the services for cross-cutting pieces built elsewhere (metrics). */
export interface ServiceHooks {
  /** Called after every upstream health check (e.g. `metrics.setUpstreamHealth`). */
  readonly onUpstreamStatus?: HealthStatusListener | undefined;
  /** Prometheus metrics of this process (the gateway counts MCP requests into it). */
  readonly metrics?: Metrics | undefined;
}

/**
 * The vault over the configured master keys: ENCRYPTION_KEY (or, outside production, the
 * key generated into DATA_DIR) seals; ENCRYPTION_PREVIOUS_KEYS still open older records.
 */
export async function openVault(config: Config, logger: Logger): Promise<Vault> {
  const masterKey = config.secrets.encryptionKey
    ? parseMasterKey(config.secrets.encryptionKey)
    : await loadOrCreateLocalKey(config.dataDir, logger);
  return new Vault([masterKey, ...config.secrets.previousKeys.map(parseMasterKey)]);
}

/**
 * Every table the vault seals into, for master-key rotation (a feature that starts sealing
 * adds its store here, or the old key could never be dropped).
 */
export function sealedStores(db: Database): SealedStore[] {
  return [
    credentialsSealedStore(new CredentialsRepository(db)),
    pendingAuthorizationsSealedStore(new CredentialsRepository(db)),
    settingsSealedStore(new AuthRepository(db)),
  ];
}

/**
 * Builds the feature services (no listening, no background work besides audit batching)
 * and defines the jobs that need them in `core.jobs`. Both processes call it: the server
 * for its routes (and, without Redis, to run the jobs itself), the workers process to run
 * the jobs on BullMQ.
 */
export async function buildServices(core: Core, hooks: ServiceHooks = {}): Promise<Services> {
  const { config, logger, database } = core;
  const db = database.db;
  const audit = new AuditService(new AuditRepository(db), {
    logger,
    batchSize: config.audit.batchSize,
    flushIntervalMs: config.audit.flushIntervalMs,
    bufferMax: config.audit.bufferMax,
    spoolDir: config.audit.spoolDir,
  });
  // Replays events an earlier run spilled to disk (database down at shutdown).
  await audit.start();
  const vault = await openVault(config, logger);
  const credentialsRepository = new CredentialsRepository(db);
  const credentials = new CredentialsService(credentialsRepository, vault, audit);
  const policy = config.upstream;
  const registry = new RegistryService({
    repo: new RegistryRepository(db),
    credentials,
    audit,
    logger,
    guardUrl: (url) => assertUrlAllowed(url, policy),
    onChange: () => core.changes.publish('registry'),
  });
  const users = new UsersRepository(db);
  const keys = new KeysService(new KeysRepository(db), users, logger);
  const access = new AccessService({
    repo: new AccessRepository(db),
    audit,
    logger,
    refreshMs: 10_000,
    onChange: () => core.changes.publish('access'),
  });
  await access.reload();
  // Changes made in another process apply here at once (and within the reload intervals
  // should a message be lost).
  core.changes.subscribe('registry', () => registry.invalidate());
  core.changes.subscribe('access', () => {
    access.reload().catch((err: unknown) => logger.warn({ err }, 'could not reload access rules'));
  });
  const upstreamHealth = new UpstreamHealthService({
    repo: new MonitoringRepository(db),
    registry,
    logger,
    settings: config.health,
    onStatus: hooks.onUpstreamStatus,
  });
  const publicOrigins = config.http.publicUrl ? [new URL(config.http.publicUrl).origin] : [];
  // Upstreams and the authorization servers they name are reached through the same SSRF guard.
  const lock =
    core.redis && config.redis ? new RedisLock(core.redis, config.redis.prefix) : new InProcessLock();
  const upstreamFetch = createGuardedFetch(policy, { timeoutMs: config.gateway.connectTimeoutMs });
  const upstreamOAuth = new UpstreamOAuthService({
    repo: credentialsRepository,
    vault,
    audit,
    logger,
    // One refresh per token across every process (server replicas and workers) with Redis.
    lock,
    fetch: upstreamFetch,
    serverById: async (id) => (await registry.list()).find((s) => s.id === id),
    publicUrl: config.http.publicUrl,
    refreshMarginSeconds: config.credentials.refreshMarginSeconds,
    onRefresh: hooks.metrics ? (outcome) => hooks.metrics?.recordTokenRefresh(outcome) : undefined,
  });
  const gateway = new Gateway({
    config: config.gateway,
    publicOrigins,
    logger,
    registry,
    access,
    credentials,
    upstreamOAuth,
    audit,
    upstreamFetch,
    guardUrl: (url) => assertUrlAllowed(url, policy),
    upstreamHealth,
    metrics: hooks.metrics,
  });
  registry.setDiscoverer((server, principal) => gateway.discover(server, principal));
  const rotation = new CredentialsRotation({ stores: sealedStores(db), vault, audit, logger });
  defineMonitoringJobs(core.jobs, {
    upstreamHealth,
    probe: (server, options) => gateway.healthCheck(server, options),
    intervalMs: config.health.intervalMs,
  });
  defineCredentialsJobs(core.jobs, {
    rotation,
    upstreamOAuth,
    refreshIntervalMs: config.credentials.refreshIntervalMs,
    // Servers may have changed in another process (the workers process has its own cache).
    beforeRefresh: () => registry.invalidate(),
  });
  const authRepo = new AuthRepository(db);
  const chat = new ChatService({
    repo: new ChatRepository(db),
    gateway,
    registry,
    credentials,
    audit,
    logger,
    lock,
    settings: config.chat,
  });
  return {
    chat,
    audit,
    vault,
    credentials,
    registry,
    users,
    keys,
    access,
    gateway,
    authRepo,
    upstreamHealth,
    rotation,
    upstreamOAuth,
  };
}

/**
 * After a master-key change, records are still under an earlier key: queue the re-wrap job
 * (whichever process runs jobs does it, while this one serves). Never fails start-up.
 */
async function queueRewrapIfNeeded(core: Core, rotation: CredentialsRotation): Promise<void> {
  try {
    const pending = await rotation.pending();
    if (!pending) return;
    core.logger.info({ pending }, 'stored secrets under an earlier master key; queueing credentials.rewrap');
    await core.runner.enqueue('credentials.rewrap', { batchSize: 200 });
  } catch (err) {
    core.logger.error({ err: (err as Error).message }, 'could not queue credentials.rewrap');
  }
}

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
  const core = await openCore(config, logger, { role: 'server' });
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
    const bootstrap = await services.keys.ensureBootstrapAdmin(config.secrets.adminBootstrapToken);
    generatedAdminKey = bootstrap.generatedKey;
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
    const s = services;
    const sessionSecret =
      config.identity.sessionSecret ?? (await sharedSecret(s.authRepo, s.vault, 'session-secret'));
    const web = new WebAuth({
      publicUrl: () => publicUrl,
      secureCookies: config.isProduction || Boolean(config.http.tls) || publicUrl.startsWith('https:'),
      sessionSecret,
      sessionTtlMs: config.identity.sessionTtlMs,
      oidc: config.identity.oidc,
      users: s.users,
      keys: s.keys,
      repo: s.authRepo,
      audit: s.audit,
      logger,
    });
    oauth = await OAuthServer.create({
      publicUrl,
      trustProxy: config.http.trustProxy !== false,
      accessTokenTtlSeconds: config.identity.accessTokenTtlSeconds,
      refreshTokenTtlDays: config.identity.refreshTokenTtlDays,
      allowedRedirectSchemes: config.identity.allowedRedirectSchemes,
      repo: s.authRepo,
      vault: s.vault,
      users: s.users,
      web,
      audit: s.audit,
      logger,
      grants: new OAuthGrantStatus({ repo: s.authRepo, changes: core.changes }),
    });
    const oauthServer = oauth;
    const bearer = [
      { authenticate: (token: string, path: string) => oauthServer.authenticate(token, path) },
      s.keys,
    ];
    const limits = new RateLimitService({
      settings: config.rateLimit,
      redis: core.redis && config.redis ? { client: core.redis, prefix: config.redis.prefix } : undefined,
      audit: s.audit,
      metrics,
      logger,
    });
    const hosts = new HostPolicy({
      publicUrl: config.http.publicUrl,
      listenPort: (http.server.address() as AddressInfo).port,
      allowedHosts: config.http.allowedHosts,
    });
    const mcp = gatewayRoutes({
      hosts,
      admit: mcpRateLimit(limits),
      gateway: s.gateway,
      authenticators: bearer,
      challenge: (req) => oauthServer.challenge(req.originalUrl.split('?')[0] ?? ''),
      audit: s.audit,
      bodyLimit: config.http.bodyLimit,
      publicOrigins: [new URL(publicUrl).origin, ...s.gateway.deps.publicOrigins],
      allowedOrigins: config.gateway.allowedOrigins,
    });
    const api = Router();
    api.use(
      '/api',
      web.session,
      requireAuth({ authenticators: [s.keys], audit: s.audit, session: web.sessionAuthenticator() }),
      userRateLimit(limits),
    );
    api.use(authApiRoutes({ web, oauth: oauthServer, users: s.users }));
    api.use(registryRoutes(s));
    api.use(monitoringRoutes(s));
    api.use(keyRotationRoutes(s));
    api.use(keysRoutes(s));
    api.use(accessRoutes(s));
    api.use(usersRoutes(s));
    api.use(auditRoutes(s.audit));
    api.use(chatRoutes(s));
    const webRoutes = Router();
    webRoutes.use('/auth', web.session);
    webRoutes.use(web.routes());
    chatSocket = attachChatSocket({
      server: http.server,
      chat: s.chat,
      session: web.session,
      principalFromSession: (req) => web.principalFromSession(req),
      authenticators: bearer,
      origins: () => [
        new URL(publicUrl).origin,
        ...s.gateway.deps.publicOrigins,
        ...config.gateway.allowedOrigins,
      ],
      redis: core.redis && config.redis ? { client: core.redis, prefix: config.redis.prefix } : undefined,
      limits,
      logger,
    });
    s.chat.setLimits(limits);
    inner = createApp({
      logger,
      bodyLimit: config.http.bodyLimit,
      trustProxy: config.http.trustProxy,
      clientDistDir: config.http.clientDistDir ?? DEFAULT_CLIENT_DIST,
      early: [
        metrics.httpMiddleware(),
        // The MCP endpoints check Host themselves (a JSON-RPC error, audited).
        requireAllowedHost(hosts, (p) => p === '/mcp' || p.startsWith('/mcp/')),
        httpsOnly({ enabled: config.isProduction, publicUrl: config.http.publicUrl }),
      ],
      // Health checks and /metrics before the per-address limit: probes must never be refused.
      routers: [
        healthRoutes(health),
        metricsRoutes(metrics, { token: config.metrics.token }),
        ipRateLimit(limits),
        // Before the authorization server's routes: they claim every other /oauth/ path.
        upstreamOAuthRoutes({ upstreamOAuth: s.upstreamOAuth, web }),
        oauthServer.routes(),
        webRoutes,
        mcp,
        api,
      ],
    });
  } catch (err) {
    await chatSocket?.close().catch(() => {});
    await http?.close(100).catch(() => {});
    await servicesIfBuilt?.gateway.close().catch(() => {});
    await core.runner.stop(1_000).catch(() => {});
    await core.close();
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
        await listening.close(Math.max(100, budget * 0.6));
        await core.runner.stop(Math.max(100, budget - (Date.now() - started) - 1_000));
        services.access.stop();
        await services.audit.stop(Math.max(100, budget - (Date.now() - started) - 300));
        await core.close();
      })();
      return stopping;
    },
  };
}
