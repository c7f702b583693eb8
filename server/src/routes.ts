import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router, type Express, type RequestHandler } from 'express';
import { accessRoutes } from './features/access/access.routes.ts';
import { auditRoutes } from './features/audit/audit.routes.ts';
import { authApiRoutes } from './features/auth/auth.routes.ts';
import { OAuthServer, requireAuth, WebAuth } from './features/auth/index.ts';
import { chatRoutes } from './features/chat/chat.routes.ts';
import { attachChatSocket } from './features/chat/index.ts';
import { keyRotationRoutes, upstreamOAuthRoutes } from './features/credentials/credentials.routes.ts';
import { isInternalHop, SessionForwarder, traceAdmission } from './features/gateway/index.ts';
import { gatewayRoutes } from './features/gateway/gateway.routes.ts';
import { healthRoutes } from './features/health/health.routes.ts';
import type { HealthService } from './features/health/index.ts';
import { keysRoutes } from './features/keys/keys.routes.ts';
import { monitoringRoutes } from './features/monitoring/monitoring.routes.ts';
import { ipRateLimit, mcpRateLimit, RateLimitService, userRateLimit } from './features/ratelimit/index.ts';
import { registryRoutes } from './features/registry/registry.routes.ts';
import { usersRoutes } from './features/users/users.routes.ts';
import type { Config } from './platform/config/config.ts';
import { createApp } from './platform/http/app.ts';
import type { RunningHttpServer } from './platform/http/http-server.ts';
import { HostPolicy, requireAllowedHost } from './platform/http/hosts.ts';
import { httpsOnly } from './platform/http/tls.ts';
import type { Logger } from './platform/logging/logger.ts';
import type { Metrics } from './platform/metrics/metrics.ts';
import { metricsRoutes } from './platform/metrics/metrics.routes.ts';
import type { Core } from './runtime.core.ts';
import type { Services } from './runtime.services.ts';

const DEFAULT_CLIENT_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../client/dist');

/** What the HTTP side is wired from: the services, and what start-up learned (public URL, listener). */
export interface RouteDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly core: Core;
  readonly services: Services;
  readonly metrics: Metrics;
  readonly health: HealthService;
  /** The URL users and clients reach the gateway at (the OAuth issuer). */
  readonly publicUrl: string;
  readonly http: RunningHttpServer;
  /** Session secret for web sign-in (configured, or shared by the replicas through the vault). */
  readonly sessionSecret: string;
  /** With several replicas (Redis): the secret of the internal hop between them. */
  readonly internalSecret?: string | undefined;
}

/** The express app of the HTTP process, and the pieces start-up and shutdown hold on to. */
export interface WiredRoutes {
  readonly app: Express;
  /** The gateway's OAuth authorization server (issuer = `publicUrl`). */
  readonly oauth: OAuthServer;
  /** The chat's socket.io endpoint on the listener. */
  readonly chatSocket: { close(): Promise<void> };
  /** With several replicas: forwards requests for sessions other replicas hold (close its connections on stop). */
  readonly forwarder: SessionForwarder | undefined;
}

/**
 * The composition root's HTTP half: every feature's routes, in the order they must match,
 * behind the authentication and rate limits each group needs. Features export their routes
 * from their `*.routes.ts`; only this module puts them together, so no feature reaches
 * another through its routes.
 */
export async function wireRoutes(deps: RouteDeps): Promise<WiredRoutes> {
  const { config, logger, core, services: s, metrics, health, publicUrl } = deps;
  const web = new WebAuth({
    publicUrl: () => publicUrl,
    secureCookies: config.isProduction || Boolean(config.http.tls) || publicUrl.startsWith('https:'),
    sessionSecret: deps.sessionSecret,
    sessionTtlMs: config.identity.sessionTtlMs,
    oidc: config.identity.oidc,
    users: s.users,
    keys: s.keys,
    repo: s.authRepo,
    audit: s.audit,
    logger,
    onUserChange: s.onUserChange,
  });
  const oauth = await OAuthServer.create({
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
    grants: s.grants,
  });
  const bearer = [{ authenticate: (token: string, path: string) => oauth.authenticate(token, path) }, s.keys];
  const redis = core.redis && config.redis ? { client: core.redis, prefix: config.redis.prefix } : undefined;
  const limits = new RateLimitService({ settings: config.rateLimit, redis, audit: s.audit, metrics, logger });
  const hosts = new HostPolicy({
    publicUrl: config.http.publicUrl,
    listenPort: (deps.http.server.address() as AddressInfo).port,
    allowedHosts: config.http.allowedHosts,
  });
  const forwarder =
    s.sessionDirectory && deps.internalSecret
      ? new SessionForwarder({ directory: s.sessionDirectory, secret: deps.internalSecret, logger })
      : undefined;
  const mcp = gatewayRoutes({
    forwarder,
    hosts,
    admit: traceAdmission(mcpRateLimit(limits)),
    gateway: s.gateway,
    authenticators: bearer,
    challenge: (req) => oauth.challenge(req.originalUrl.split('?')[0] ?? ''),
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
  api.use(authApiRoutes({ web, oauth, users: s.users }));
  api.use(registryRoutes(s));
  api.use(monitoringRoutes(s));
  api.use(keyRotationRoutes(s));
  api.use(
    keysRoutes({
      ...s,
      serverVisible: async (principal, slug) => {
        const server = await s.registry.get(slug);
        return Boolean(server && s.access.canViewServer(principal, server));
      },
    }),
  );
  api.use(accessRoutes(s));
  api.use(usersRoutes(s));
  api.use(auditRoutes(s.audit));
  api.use(chatRoutes(s));
  const webRoutes = Router();
  webRoutes.use('/auth', web.session);
  webRoutes.use(web.routes());
  const chatSocket = attachChatSocket({
    server: deps.http.server,
    chat: s.chat,
    session: web.session,
    principalFromSession: (req) => web.principalFromSession(req),
    authenticators: bearer,
    origins: () => [
      new URL(publicUrl).origin,
      ...s.gateway.deps.publicOrigins,
      ...config.gateway.allowedOrigins,
    ],
    allowsHost: (host) => hosts.allows(host),
    redis,
    limits,
    logger,
  });
  try {
    s.chat.setLimits(limits);
    const app = createApp({
      logger,
      bodyLimit: config.http.bodyLimit,
      trustProxy: config.http.trustProxy,
      clientDistDir: config.http.clientDistDir ?? DEFAULT_CLIENT_DIST,
      early: [
        // First: a request forwarded by another replica carries the client's address, scheme
        // and Host as that replica saw them, which every later check reads.
        ...(forwarder ? [forwarder.acceptHop()] : []),
        metrics.httpMiddleware(),
        // The MCP endpoints check Host themselves (a JSON-RPC error, audited).
        requireAllowedHost(hosts, (p) => p === '/mcp' || p.startsWith('/mcp/')),
        httpsOnly({ enabled: config.isProduction, publicUrl: config.http.publicUrl }),
      ],
      // Health checks and /metrics before the per-address limit: probes must never be refused.
      routers: [
        healthRoutes(health),
        metricsRoutes(metrics, { token: config.metrics.token }),
        // A forwarded request was counted by the replica that received it.
        forwarder ? skipInternalHop(ipRateLimit(limits)) : ipRateLimit(limits),
        // Before the authorization server's routes: they claim every other /oauth/ path.
        upstreamOAuthRoutes({ upstreamOAuth: s.upstreamOAuth, web }),
        oauth.routes(),
        webRoutes,
        mcp,
        api,
      ],
    });
    return { app, oauth, chatSocket, forwarder };
  } catch (err) {
    await chatSocket.close().catch(() => {});
    throw err;
  }
}

/** Runs `handler` for every request but those forwarded by another replica. */
function skipInternalHop(handler: RequestHandler): Router {
  return Router().use((req, res, next) => (isInternalHop(res) ? next() : handler(req, res, next)));
}
