import { AccessRepository, AccessService } from './features/access/index.ts';
import { AuditRepository, AuditService } from './features/audit/index.ts';
import {
  AuthRepository,
  LivePrincipals,
  OAuthGrantStatus,
  settingsSealedStore,
} from './features/auth/index.ts';
import { ChatRepository, ChatService } from './features/chat/index.ts';
import {
  CredentialsRepository,
  CredentialsRotation,
  CredentialsService,
  credentialsSealedStore,
  defineCredentialsJobs,
  InProcessLock,
  pendingAuthorizationsSealedStore,
  RedisLock,
  UpstreamOAuthService,
} from './features/credentials/index.ts';
import { Gateway, SessionDirectory } from './features/gateway/index.ts';
import { KeysRepository, KeysService } from './features/keys/index.ts';
import {
  defineMonitoringJobs,
  MonitoringRepository,
  UpstreamHealthService,
  type HealthStatusListener,
} from './features/monitoring/index.ts';
import { RegistryRepository, RegistryService } from './features/registry/index.ts';
import { UsersRepository } from './features/users/index.ts';
import type { SealedStore } from './platform/crypto/sealed.store.ts';
import { loadOrCreateLocalKey, parseMasterKey, Vault } from './platform/crypto/vault.ts';
import type { Config } from './platform/config/config.ts';
import type { Database } from './platform/db/database.ts';
import type { Logger } from './platform/logging/logger.ts';
import type { Metrics } from './platform/metrics/metrics.ts';
import { assertUrlAllowed, createGuardedFetch } from './platform/net/ssrf.ts';
import type { Core } from './runtime.core.ts';

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
  /** With Redis: which replica holds each MCP session (the server starts it once it listens). */
  readonly sessionDirectory: SessionDirectory | undefined;
  readonly upstreamHealth: UpstreamHealthService;
  readonly rotation: CredentialsRotation;
  readonly authRepo: AuthRepository;
  /** Users' connections to upstream servers that require OAuth (tokens, refresh job). */
  readonly upstreamOAuth: UpstreamOAuthService;
  /** Chat threads and the agent (its turns run in the server process). */
  readonly chat: ChatService;
  /** Whether OAuth grants still stand (every MCP request with an OAuth token asks). */
  readonly grants: OAuthGrantStatus;
  /**
   * Call after a user's role, groups or disabled mark changed: cached key lookups are
   * dropped and open MCP sessions re-checked, here and (change feed) in the other processes.
   */
  readonly onUserChange: () => void;
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
    onChange: () => {
      core.changes.publish('registry');
      gateway.recheckSessions();
    },
  });
  const users = new UsersRepository(db);
  // Changes that can take access away re-check the open MCP sessions (`gateway`, built
  // below, exists by the time any of these fires: they come from requests and the feed).
  const keys = new KeysService(new KeysRepository(db), users, logger, () => {
    core.changes.publish('keys');
    gateway.recheckSessions();
  });
  const authRepo = new AuthRepository(db);
  const grants = new OAuthGrantStatus({
    repo: authRepo,
    changes: core.changes,
    onRevoked: () => gateway.recheckSessions(),
  });
  const onUserChange = () => {
    keys.forget();
    core.changes.publish('users');
    gateway.recheckSessions();
  };
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
  core.changes.subscribe('registry', () => {
    registry.invalidate();
    gateway.recheckSessions();
  });
  core.changes.subscribe('access', () => {
    access.reload().catch((err: unknown) => logger.warn({ err }, 'could not reload access rules'));
  });
  // Rules that changed (here, reloaded after a message, or found by the periodic reload).
  access.onRulesChanged(() => gateway.recheckSessions());
  for (const topic of ['users', 'keys'] as const)
    core.changes.subscribe(topic, () => {
      keys.forget();
      gateway.recheckSessions();
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
  const sessionDirectory =
    core.redis && config.redis
      ? new SessionDirectory({ redis: core.redis, prefix: config.redis.prefix, logger })
      : undefined;
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
    principals: new LivePrincipals({ users, keys, grants }),
    metrics: hooks.metrics,
    directory: sessionDirectory,
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
    sessionDirectory,
    authRepo,
    upstreamHealth,
    rotation,
    upstreamOAuth,
    grants,
    onUserChange,
  };
}

/**
 * After a master-key change, records are still under an earlier key: queue the re-wrap job
 * (whichever process runs jobs does it, while this one serves). Never fails start-up.
 */
export async function queueRewrapIfNeeded(core: Core, rotation: CredentialsRotation): Promise<void> {
  try {
    const pending = await rotation.pending();
    if (!pending) return;
    core.logger.info({ pending }, 'stored secrets under an earlier master key; queueing credentials.rewrap');
    await core.runner.enqueue('credentials.rewrap', { batchSize: 200 });
  } catch (err) {
    core.logger.error({ err: (err as Error).message }, 'could not queue credentials.rewrap');
  }
}
