import path from 'node:path';
import { z } from 'zod';

/**
 * The whole configuration, parsed once from the environment at start-up. Nothing else in
 * the codebase reads `process.env`: features receive the slice of `Config` they need.
 * Every variable is documented here and in the README's configuration table.
 */

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const emptyToUndefined = (v: unknown) => (v === '' ? undefined : v);

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const base64Key = z
  .string()
  .refine(
    (v) => Buffer.from(v.trim(), 'base64').length === 32,
    'must be 32 bytes, base64-encoded (openssl rand -base64 32)',
  );

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const protocolOf = (v: string) => {
  try {
    return new URL(v).protocol;
  } catch {
    return undefined;
  }
};

const postgresUrl = z.string().refine((v) => /^postgres(ql)?:$/.test(protocolOf(v) ?? ''), {
  message: 'must be a postgres:// or postgresql:// URL',
});

const redisUrl = z.string().refine((v) => /^rediss?:$/.test(protocolOf(v) ?? ''), {
  message: 'must be a redis:// or rediss:// URL',
});

/** A RATE_LIMIT_TOOLS key: a server slug, `__`, and a tool name or `*`. */
const TOOL_LIMIT_KEY = /^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?__.+$/;

const envSchema = z.object({
  // --- process ---
  /** `production` turns on the strict defaults (no generated secrets, secure cookies). */
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  /** Interface to listen on. `0.0.0.0` in containers. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** TCP port of the HTTP server. 0 picks a free port (tests). */
  PORT: int(0, 65535).default(3000),
  /** The URL users and MCP clients reach the gateway at (used in links and OAuth metadata). */
  PUBLIC_URL: z.preprocess(emptyToUndefined, z.string().url().optional()),
  /** Where the embedded database and other local state live. */
  DATA_DIR: z.string().min(1).default('./data'),
  /** Milliseconds to drain requests and jobs on SIGTERM/SIGINT before exiting anyway. */
  SHUTDOWN_TIMEOUT_MS: int(100, 120_000).default(10_000),
  // --- logging ---
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // --- http ---
  /** Largest accepted request body (bytes, or a size like `1mb`). Larger bodies get 413. */
  HTTP_BODY_LIMIT: z
    .string()
    .regex(/^\d+(b|kb|mb)?$/i, 'must be a size such as 1048576, 512kb or 4mb')
    .default('4mb'),
  /**
   * Host header values served besides PUBLIC_URL's host, `localhost`/`127.0.0.1`/`[::1]` on
   * the listening port, and IP addresses (comma-separated `name` for any port, `name:port`,
   * or `*` for no check). Any other Host gets 403: a DNS-rebinding page arrives with its own
   * domain as Host. Behind a proxy that rewrites Host, name what it sends, or set TRUST_PROXY
   * so its X-Forwarded-Host counts (never trusted otherwise).
   */
  ALLOWED_HOSTS: z
    .string()
    .regex(
      /^\s*(\*|[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?)?(\s*,\s*(\*|[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?))*\s*$/,
      'must be comma-separated host names, host:port pairs, or *',
    )
    .default(''),
  /** Express `trust proxy` setting: false, true, a hop count, or a comma-separated list of subnets. */
  TRUST_PROXY: z.string().default('false'),
  /** Directory with the built web client. Defaults to client/dist in the repository. */
  CLIENT_DIST_DIR: z.preprocess(emptyToUndefined, z.string().optional()),
  // --- database ---
  /** PostgreSQL connection string. Unset: the embedded PGlite database under DATA_DIR. */
  DATABASE_URL: z.preprocess(emptyToUndefined, postgresUrl.optional()),
  /** Largest number of pooled PostgreSQL connections per process. */
  DATABASE_POOL_MAX: int(1, 200).default(10),
  /** Milliseconds to wait for a PostgreSQL connection before failing. */
  DATABASE_CONNECT_TIMEOUT_MS: int(100, 120_000).default(5_000),
  // --- redis / jobs ---
  /** Redis connection string. Set: BullMQ queues and the separate workers process. Unset: jobs run in-process. */
  REDIS_URL: z.preprocess(emptyToUndefined, redisUrl.optional()),
  /** Prefix of every Redis key the gateway writes, so several deployments can share a Redis. */
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_-]{1,64}$/, 'letters, digits, ":", "_" and "-" only')
    .default('gw'),
  /**
   * Shared secret of the internal hop between server replicas (at least 32 characters, the
   * same on every replica): a replica forwards requests for an MCP session another replica
   * holds, and the owner accepts them only with this secret. Required in production with
   * REDIS_URL; unset elsewhere: generated once and shared through the database.
   */
  INTERNAL_SECRET: z.preprocess(
    emptyToUndefined,
    z.string().min(32, 'must be at least 32 characters').max(512).optional(),
  ),
  /**
   * The URL other replicas reach this replica at (its own address, not the load balancer's),
   * such as `http://10.0.0.5:3000`. Required in production with REDIS_URL; unset elsewhere:
   * the listening address.
   */
  REPLICA_URL: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .refine((v) => /^https?:$/.test(protocolOf(v) ?? ''), { message: 'must be an http:// or https:// URL' })
      .refine((v) => !/^[^?#]*\/\/[^/]+\/./.test(v), {
        message: 'must have no path (scheme, host and port only)',
      })
      .optional(),
  ),
  /** How often the heartbeat job records that a job runner is alive (ms). */
  JOBS_HEARTBEAT_INTERVAL_MS: int(1_000, 86_400_000).default(60_000),
  /** Jobs processed at once by one runner. */
  JOBS_CONCURRENCY: int(1, 100).default(4),
  // --- secrets ---
  /** Master key for stored secrets: 32 bytes, base64. Unset outside production: generated into DATA_DIR/encryption.key. */
  ENCRYPTION_KEY: z.preprocess(emptyToUndefined, base64Key.optional()),
  /** Earlier master keys, comma-separated, still accepted for reading while records are re-wrapped. */
  ENCRYPTION_PREVIOUS_KEYS: z.preprocess(emptyToUndefined, z.string().optional()),
  /** At start-up, queue the re-wrap job when stored secrets are still under an earlier master key. */
  ENCRYPTION_REWRAP_ON_START: bool.default(true),
  /** Admin API key to install at start-up (at least 32 characters). Unset on first start: one is generated and printed once. */
  ADMIN_BOOTSTRAP_TOKEN: z.preprocess(
    emptyToUndefined,
    z.string().min(32, 'must be at least 32 characters').max(512).optional(),
  ),
  // --- upstream OAuth credentials ---
  /** How often the credentials.refresh job looks for upstream OAuth tokens about to expire (ms). */
  CREDENTIALS_REFRESH_INTERVAL_MS: int(1_000, 86_400_000).default(60_000),
  /** Upstream OAuth tokens expiring within this many seconds are refreshed by the job. */
  CREDENTIALS_REFRESH_MARGIN_SECONDS: int(0, 86_400).default(300),
  // --- gateway ---
  /** JSON file of MCP servers ({"mcpServers": {...}}) synced into the registry at start-up. */
  MCP_SERVERS_FILE: z.preprocess(emptyToUndefined, z.string().optional()),
  /** Milliseconds an upstream may take to answer one request before the client gets an error. */
  GATEWAY_REQUEST_TIMEOUT_MS: int(100, 3_600_000).default(60_000),
  /** Milliseconds to start and initialize an upstream before giving up. */
  GATEWAY_CONNECT_TIMEOUT_MS: int(100, 600_000).default(30_000),
  /**
   * Minutes an MCP session may stay idle before the gateway ends it. 30: an idle session
   * holds an upstream session (and a process per stdio server) for a credential that may be
   * gone; a client that comes back gets 404 and re-initializes, as the spec says.
   */
  GATEWAY_SESSION_IDLE_MINUTES: int(1, 10_080).default(30),
  /** Open MCP sessions one user may have at once (over it: 429); 0: no limit. */
  GATEWAY_MAX_SESSIONS_PER_USER: int(0, 1_000_000).default(32),
  /** Open MCP sessions of this process in total (over it: 503); 0: no limit. */
  GATEWAY_MAX_SESSIONS: int(0, 10_000_000).default(2_000),
  /** Upstream stdio processes the sessions of one user may hold at once (over it: 429); 0: no limit. */
  GATEWAY_MAX_STDIO_PER_USER: int(0, 100_000).default(32),
  /** Upstream stdio processes the sessions of this process may hold in total (over it: 503); 0: no limit. */
  GATEWAY_MAX_STDIO: int(0, 1_000_000).default(256),
  /** Pre-started stdio processes kept per (server, user[, thread]); 0 disables the warm pool. */
  GATEWAY_STDIO_POOL_SIZE: int(0, 16).default(1),
  /** Milliseconds an unused warm stdio process lives before it is reaped. */
  GATEWAY_STDIO_POOL_IDLE_MS: int(1_000, 86_400_000).default(300_000),
  /** Extra browser origins allowed to call /mcp (comma-separated); same-origin is always allowed. */
  GATEWAY_ALLOWED_ORIGINS: z.string().default(''),
  /** Allow http:// and loopback addresses for remote MCP servers (development and tests only). */
  UPSTREAM_ALLOW_LOOPBACK: bool.default(false),
  /** Allow private-range addresses (10/8, 172.16/12, 192.168/16, ...) for remote MCP servers. */
  UPSTREAM_ALLOW_PRIVATE: bool.default(false),
  /** Hosts (exact or *.suffix) and CIDRs always allowed for remote MCP servers, comma-separated. */
  UPSTREAM_ALLOW_LIST: z.string().default(''),
  // --- TLS ---
  /** PEM certificate (with chain) to serve HTTPS directly; set together with TLS_KEY_FILE. Unset: plain HTTP (TLS at a proxy). */
  TLS_CERT_FILE: z.preprocess(emptyToUndefined, z.string().optional()),
  /** PEM private key of TLS_CERT_FILE. */
  TLS_KEY_FILE: z.preprocess(emptyToUndefined, z.string().optional()),
  // --- metrics ---
  /** Bearer token GET /metrics requires (at least 16 characters). Unset: /metrics is open to anyone who reaches it. */
  METRICS_TOKEN: z.preprocess(
    emptyToUndefined,
    z.string().min(16, 'must be at least 16 characters').max(512).optional(),
  ),
  /**
   * Port on which the workers process serves GET /metrics (and /healthz) for Prometheus, on
   * HOST; 0: none. The workers process runs the token refreshes and health checks whose
   * counters would otherwise never be scraped.
   */
  WORKERS_METRICS_PORT: int(0, 65535).default(9464),
  // --- tracing (OpenTelemetry) ---
  /**
   * OTLP/HTTP endpoint that receives traces (a collector, Jaeger, Tempo: `http://host:4318`);
   * spans are POSTed as JSON to `{endpoint}/v1/traces`. Unset: tracing is off and costs nothing.
   */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .refine((v) => /^https?:$/.test(protocolOf(v) ?? ''), 'must be an http:// or https:// URL')
      .optional(),
  ),
  /** Headers sent with every export, `key=value` comma-separated (a hosted backend's API key). */
  OTEL_EXPORTER_OTLP_HEADERS: z
    .string()
    .regex(/^([^=,]+=[^,]*(,[^=,]+=[^,]*)*)?$/, 'must look like key1=value1,key2=value2')
    .default(''),
  /** `service.name` of the spans. */
  OTEL_SERVICE_NAME: z.string().min(1).default('mcp-gateway'),
  /** Milliseconds spans wait in memory before a batch is exported. */
  OTEL_BSP_SCHEDULE_DELAY: int(10, 600_000).default(5_000),
  // --- rate limits (requests per minute; 0 turns a limit off) ---
  // The defaults are ceilings on runaway loops and floods, not on work: an agent fires bursts
  // of quick tool calls (dozens per second), and every MCP request also counts against the
  // address it comes from, so 10 per second stopped ordinary agents. Comparable gateways
  // allow 100-200 per second per user. Expensive tools get their own RATE_LIMIT_TOOLS entry.
  /** Requests per client IP, counted before authentication (every path but /healthz, /readyz, /metrics); 200/s. */
  RATE_LIMIT_IP_PER_MINUTE: int(0, 1_000_000).default(12_000),
  /** Authenticated requests per user (REST API and MCP endpoints); 200/s. */
  RATE_LIMIT_USER_PER_MINUTE: int(0, 1_000_000).default(12_000),
  /** Requests per user to one MCP server (/mcp/{server}, and tools/call of {server}__* on /mcp); 100/s. */
  RATE_LIMIT_USER_SERVER_PER_MINUTE: int(0, 1_000_000).default(6_000),
  /** Per-user limits of single tools: JSON object {"server__tool": n}; "server__*" covers that server's other tools. */
  RATE_LIMIT_TOOLS: z
    .string()
    .default('{}')
    .transform((v, ctx) => {
      const fail = (message: string) => {
        ctx.addIssue({ code: 'custom', message });
        return z.NEVER;
      };
      let parsed: unknown;
      try {
        parsed = JSON.parse(v.trim() || '{}');
      } catch {
        parsed = undefined;
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
        return fail('must be a JSON object such as {"github__create_issue": 10}');
      }
      const limits: Record<string, number> = {};
      for (const [key, value] of Object.entries(parsed)) {
        if (!TOOL_LIMIT_KEY.test(key)) {
          return fail(
            `key "${key.slice(0, 100)}" must be {server}__{tool} or {server}__* (github__create_issue)`,
          );
        }
        if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 1_000_000) {
          return fail(`value of "${key}" must be a whole number of requests per minute (0 turns it off)`);
        }
        limits[key] = value as number;
      }
      return limits;
    }),
  // --- identity ---
  /** OpenID Connect issuer of the organisation's identity provider. Unset: local sign-in of the bootstrap admin only. */
  OIDC_ISSUER: z.preprocess(emptyToUndefined, z.string().url().optional()),
  /** Client id of the gateway at the identity provider. */
  OIDC_CLIENT_ID: z.preprocess(emptyToUndefined, z.string().optional()),
  /** Client secret of the gateway at the identity provider. */
  OIDC_CLIENT_SECRET: z.preprocess(emptyToUndefined, z.string().optional()),
  /** Scopes asked of the identity provider, space-separated. */
  OIDC_SCOPES: z.string().default('openid profile email'),
  /** ID token / userinfo claim that lists the user's groups. */
  OIDC_GROUPS_CLAIM: z.string().min(1).default('groups'),
  /** Group-to-role mapping: `admin=group1|group2,auditor=group3`. Users in no mapped group are `user`. */
  OIDC_ROLE_MAP: z
    .string()
    .regex(
      /^((admin|auditor|user)=[^,=]+(,(admin|auditor|user)=[^,=]+)*)?$/,
      'must look like admin=group1|group2,auditor=group3',
    )
    .default(''),
  /** Secret that signs session cookies (at least 32 characters). Unset: generated once and shared through the database. */
  SESSION_SECRET: z.preprocess(
    emptyToUndefined,
    z.string().min(32, 'must be at least 32 characters').optional(),
  ),
  /** Hours a web session lasts without activity. */
  SESSION_TTL_HOURS: int(1, 24 * 90).default(12),
  /** Lifetime of OAuth access tokens issued to MCP clients (seconds). */
  OAUTH_ACCESS_TOKEN_TTL_SECONDS: int(60, 86_400).default(600),
  /** Lifetime of OAuth refresh tokens and grants (days). */
  OAUTH_REFRESH_TOKEN_TTL_DAYS: int(1, 365).default(30),
  /** Custom URI schemes allowed as OAuth redirect URIs besides https and loopback http (e.g. `cursor,vscode`). */
  OAUTH_ALLOWED_REDIRECT_SCHEMES: z
    .string()
    .regex(/^([a-z][a-z0-9+.-]*(,[a-z][a-z0-9+.-]*)*)?$/, 'must be comma-separated URI schemes')
    .default(''),
  // --- upstream health checks ---
  /** How often every enabled MCP server is connected to and pinged (ms). */
  HEALTH_CHECK_INTERVAL_MS: int(100, 86_400_000).default(60_000),
  /** Budget of each step of one check (connect and initialize, ping, capability listing) in ms. */
  HEALTH_CHECK_TIMEOUT_MS: int(100, 600_000).default(10_000),
  /** A ping slower than this (ms) marks an answering server `degraded`. */
  HEALTH_DEGRADED_MS: int(1, 600_000).default(2_000),
  /** Health checks kept per server (older ones are deleted by the job). */
  HEALTH_HISTORY_SIZE: int(1, 100_000).default(100),
  // --- chat ---
  /** API key for the chat model's OpenAI-compatible endpoint. Unset (and no OPENAI_BASE_URL): chat is off, the rest works. */
  OPENAI_API_KEY: z.preprocess(emptyToUndefined, z.string().optional()),
  /** OpenAI-compatible endpoint (vLLM, Ollama, LM Studio: `http://host:port/v1`). Unset: OpenAI. */
  OPENAI_BASE_URL: z.preprocess(emptyToUndefined, z.string().url().optional()),
  /** Model the agent uses (Chat Completions API). */
  CHAT_MODEL: z.string().min(1).default('gpt-4o-mini'),
  /** Most model calls in one agent turn (each tool round is one). */
  CHAT_MAX_STEPS: int(1, 100).default(10),
  /** How long a sensitive tool call waits for the user's approval before it is denied (ms). */
  CHAT_APPROVAL_TIMEOUT_MS: int(1_000, 86_400_000).default(300_000),
  /** Budget of one agent turn, all steps and tool calls included (ms). */
  CHAT_TURN_TIMEOUT_MS: int(1_000, 3_600_000).default(600_000),
  /** Instructions given to the model at the start of every thread. Unset: a short built-in one. */
  CHAT_SYSTEM_PROMPT: z.preprocess(emptyToUndefined, z.string().max(20_000).optional()),
  // --- audit ---
  /** Audit events written per database round trip. */
  AUDIT_BATCH_SIZE: int(1, 10_000).default(200),
  /** Milliseconds an audit event may wait in memory before its batch is written. */
  AUDIT_FLUSH_INTERVAL_MS: int(10, 60_000).default(250),
  /** Audit events held in memory while the database is slow or down; beyond this they spill to DATA_DIR/audit-spool. */
  AUDIT_BUFFER_MAX: int(10, 10_000_000).default(10_000),
  /** Days audit events are kept; the daily audit.retention job deletes older ones. 0 keeps them forever. */
  AUDIT_RETENTION_DAYS: int(0, 36_500).default(365),
  /** Directory the audit.export job writes JSONL files to (events since the last export). Unset: no export job. */
  AUDIT_EXPORT_DIR: z.preprocess(emptyToUndefined, z.string().optional()),
  /** Hours between two runs of the audit.export job. */
  AUDIT_EXPORT_INTERVAL_HOURS: int(1, 8_760).default(24),
});

export type Env = Record<string, string | undefined>;

/** A problem with one environment variable; start-up prints it on one line and exits 1. */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, problem: string) {
    super(`invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

function parseRoleMap(raw: string): Record<string, 'admin' | 'auditor' | 'user'> {
  const map: Record<string, 'admin' | 'auditor' | 'user'> = {};
  for (const entry of list(raw)) {
    const [role, groups] = entry.split('=') as ['admin' | 'auditor' | 'user', string];
    for (const g of groups
      .split('|')
      .map((x) => x.trim())
      .filter(Boolean))
      map[g] = role;
  }
  return map;
}

function parseTrustProxy(raw: string): boolean | number | string[] {
  const v = raw.trim().toLowerCase();
  if (v === 'false' || v === '0' || v === '') return false;
  if (v === 'true') return true;
  if (/^\d+$/.test(v)) return Number(v);
  return list(raw);
}

function build(env: z.infer<typeof envSchema>) {
  const dataDir = path.resolve(env.DATA_DIR);
  return {
    env: env.NODE_ENV,
    isProduction: env.NODE_ENV === 'production',
    http: {
      host: env.HOST,
      port: env.PORT,
      publicUrl: env.PUBLIC_URL?.replace(/\/+$/, ''),
      bodyLimit: env.HTTP_BODY_LIMIT.toLowerCase(),
      trustProxy: parseTrustProxy(env.TRUST_PROXY),
      allowedHosts: list(env.ALLOWED_HOSTS),
      clientDistDir: env.CLIENT_DIST_DIR ? path.resolve(env.CLIENT_DIST_DIR) : undefined,
      tls:
        env.TLS_CERT_FILE && env.TLS_KEY_FILE
          ? { certFile: path.resolve(env.TLS_CERT_FILE), keyFile: path.resolve(env.TLS_KEY_FILE) }
          : undefined,
    },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    log: { level: env.LOG_LEVEL },
    dataDir,
    database: env.DATABASE_URL
      ? {
          kind: 'postgres' as const,
          url: env.DATABASE_URL,
          poolMax: env.DATABASE_POOL_MAX,
          connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
        }
      : { kind: 'pglite' as const, dir: path.join(dataDir, 'pglite') },
    redis: env.REDIS_URL ? { url: env.REDIS_URL, prefix: env.REDIS_PREFIX } : undefined,
    replicas: {
      internalSecret: env.INTERNAL_SECRET,
      replicaUrl: env.REPLICA_URL?.replace(/\/+$/, ''),
    },
    jobs: {
      heartbeatIntervalMs: env.JOBS_HEARTBEAT_INTERVAL_MS,
      concurrency: env.JOBS_CONCURRENCY,
    },
    secrets: {
      encryptionKey: env.ENCRYPTION_KEY,
      previousKeys: list(env.ENCRYPTION_PREVIOUS_KEYS ?? ''),
      adminBootstrapToken: env.ADMIN_BOOTSTRAP_TOKEN,
      rewrapOnStart: env.ENCRYPTION_REWRAP_ON_START,
    },
    credentials: {
      refreshIntervalMs: env.CREDENTIALS_REFRESH_INTERVAL_MS,
      refreshMarginSeconds: env.CREDENTIALS_REFRESH_MARGIN_SECONDS,
    },
    health: {
      intervalMs: env.HEALTH_CHECK_INTERVAL_MS,
      timeoutMs: env.HEALTH_CHECK_TIMEOUT_MS,
      degradedMs: env.HEALTH_DEGRADED_MS,
      historySize: env.HEALTH_HISTORY_SIZE,
    },
    gateway: {
      serversFile: env.MCP_SERVERS_FILE ? path.resolve(env.MCP_SERVERS_FILE) : undefined,
      requestTimeoutMs: env.GATEWAY_REQUEST_TIMEOUT_MS,
      connectTimeoutMs: env.GATEWAY_CONNECT_TIMEOUT_MS,
      sessionIdleMs: env.GATEWAY_SESSION_IDLE_MINUTES * 60_000,
      limits: {
        sessionsPerUser: env.GATEWAY_MAX_SESSIONS_PER_USER,
        sessions: env.GATEWAY_MAX_SESSIONS,
        stdioPerUser: env.GATEWAY_MAX_STDIO_PER_USER,
        stdio: env.GATEWAY_MAX_STDIO,
      },
      stdioPoolSize: env.GATEWAY_STDIO_POOL_SIZE,
      stdioPoolIdleMs: env.GATEWAY_STDIO_POOL_IDLE_MS,
      allowedOrigins: list(env.GATEWAY_ALLOWED_ORIGINS),
    },
    upstream: {
      allowLoopback: env.UPSTREAM_ALLOW_LOOPBACK,
      allowPrivate: env.UPSTREAM_ALLOW_PRIVATE,
      allowList: list(env.UPSTREAM_ALLOW_LIST),
    },
    metrics: { token: env.METRICS_TOKEN, workersPort: env.WORKERS_METRICS_PORT },
    telemetry: {
      tracing: env.OTEL_EXPORTER_OTLP_ENDPOINT
        ? {
            // The OTLP convention: the base endpoint gets the signal's path appended.
            endpoint: `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`,
            headers: Object.fromEntries(
              list(env.OTEL_EXPORTER_OTLP_HEADERS).map((kv) => {
                const eq = kv.indexOf('=');
                return [kv.slice(0, eq).trim(), decodeURIComponent(kv.slice(eq + 1).trim())];
              }),
            ),
            serviceName: env.OTEL_SERVICE_NAME,
            scheduleDelayMs: env.OTEL_BSP_SCHEDULE_DELAY,
          }
        : undefined,
    },
    rateLimit: {
      ipPerMinute: env.RATE_LIMIT_IP_PER_MINUTE,
      userPerMinute: env.RATE_LIMIT_USER_PER_MINUTE,
      userServerPerMinute: env.RATE_LIMIT_USER_SERVER_PER_MINUTE,
      tools: env.RATE_LIMIT_TOOLS,
    },
    identity: {
      oidc:
        env.OIDC_ISSUER && env.OIDC_CLIENT_ID
          ? {
              issuer: env.OIDC_ISSUER,
              clientId: env.OIDC_CLIENT_ID,
              clientSecret: env.OIDC_CLIENT_SECRET ?? '',
              scopes: env.OIDC_SCOPES.split(/\s+/).filter(Boolean),
              groupsClaim: env.OIDC_GROUPS_CLAIM,
              roleMap: parseRoleMap(env.OIDC_ROLE_MAP),
            }
          : undefined,
      sessionSecret: env.SESSION_SECRET,
      sessionTtlMs: env.SESSION_TTL_HOURS * 3_600_000,
      accessTokenTtlSeconds: env.OAUTH_ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlDays: env.OAUTH_REFRESH_TOKEN_TTL_DAYS,
      allowedRedirectSchemes: list(env.OAUTH_ALLOWED_REDIRECT_SCHEMES),
    },
    chat: {
      // Chat is on with a key, or with a base URL alone (local servers often need no key).
      model:
        env.OPENAI_API_KEY || env.OPENAI_BASE_URL
          ? {
              apiKey: env.OPENAI_API_KEY,
              baseUrl: env.OPENAI_BASE_URL,
              name: env.CHAT_MODEL,
            }
          : undefined,
      maxSteps: env.CHAT_MAX_STEPS,
      approvalTimeoutMs: env.CHAT_APPROVAL_TIMEOUT_MS,
      turnTimeoutMs: env.CHAT_TURN_TIMEOUT_MS,
      systemPrompt: env.CHAT_SYSTEM_PROMPT,
    },
    audit: {
      batchSize: env.AUDIT_BATCH_SIZE,
      flushIntervalMs: env.AUDIT_FLUSH_INTERVAL_MS,
      bufferMax: env.AUDIT_BUFFER_MAX,
      spoolDir: path.join(dataDir, 'audit-spool'),
      retentionDays: env.AUDIT_RETENTION_DAYS,
      exportDir: env.AUDIT_EXPORT_DIR ? path.resolve(env.AUDIT_EXPORT_DIR) : undefined,
      exportIntervalMs: env.AUDIT_EXPORT_INTERVAL_HOURS * 3_600_000,
    },
  };
}

export type Config = ReturnType<typeof build>;
export type DatabaseConfig = Config['database'];

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Parses the environment into a frozen `Config`.
 * @throws ConfigError naming the first bad variable (never echoing its value: it may be a secret).
 */
export function loadConfig(env: Env): Config {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    throw new ConfigError(variable, issue.message.replace(/^Invalid input: /, ''));
  }
  if (result.data.OIDC_ISSUER && !result.data.OIDC_CLIENT_ID) {
    throw new ConfigError('OIDC_CLIENT_ID', 'is required when OIDC_ISSUER is set');
  }
  if (result.data.NODE_ENV === 'production' && !result.data.ENCRYPTION_KEY) {
    throw new ConfigError('ENCRYPTION_KEY', 'is required in production (openssl rand -base64 32)');
  }
  if (result.data.NODE_ENV === 'production' && result.data.REDIS_URL) {
    // Replicas in production are configured explicitly: the listening address is rarely the
    // one other machines reach, and a wrong one shows only as lost sessions under load.
    for (const variable of ['INTERNAL_SECRET', 'REPLICA_URL'] as const) {
      if (!result.data[variable]) {
        throw new ConfigError(
          variable,
          `is required in production with REDIS_URL (${variable === 'INTERNAL_SECRET' ? 'the same secret on every replica: openssl rand -base64 32' : "this replica's own address, such as http://10.0.0.5:3000"})`,
        );
      }
    }
  }
  if (Boolean(result.data.TLS_CERT_FILE) !== Boolean(result.data.TLS_KEY_FILE)) {
    const missing = result.data.TLS_CERT_FILE ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE';
    throw new ConfigError(missing, 'must be set too: TLS_CERT_FILE and TLS_KEY_FILE go together');
  }
  for (const k of list(result.data.ENCRYPTION_PREVIOUS_KEYS ?? '')) {
    if (Buffer.from(k, 'base64').length !== 32) {
      throw new ConfigError('ENCRYPTION_PREVIOUS_KEYS', 'must list 32-byte base64 keys separated by commas');
    }
  }
  return deepFreeze(build(result.data));
}
