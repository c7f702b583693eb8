import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Capabilities } from '@gateway/shared';
import { sameCredential, type Principal } from '../../core/principal.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { ServerRecord } from '../registry/index.ts';
import { AggregateSession } from './aggregate.session.ts';
import { GatewayAudit, scrub } from './gateway.audit.ts';
import { rpcErrorOf, SessionLimitReached } from './gateway.errors.ts';
import { authorizeRequest, filterListResult } from './gateway.policy.ts';
import type { GatewayDeps, SessionContext } from './gateway.ports.ts';
import type { GatewaySession, SessionHost } from './gateway.session.ts';
import { DownstreamHttpTransport } from './gateway.transport.ts';
import { GatewayUpstreams, type HealthProbe, type UpstreamConnection } from './gateway.upstreams.ts';
import { relayTracer, tracePolicy } from './gateway.tracing.ts';
import { McpRelay } from './mcp.relay.ts';

export type { GatewaySession } from './gateway.session.ts';

/** What the re-check needs of a session, external or in-process. */
type Recheckable = Pick<GatewaySession, 'id' | 'context' | 'stdio' | 'close' | 'recheck'>;

const isStdio = (server: ServerRecord) => server.resolvedTransport.type === 'stdio';
export type { HealthProbe, UpstreamConnection } from './gateway.upstreams.ts';

/**
 * The MCP gateway: owns downstream sessions (one SDK server transport each), opens one
 * upstream session per downstream session under the caller's credentials, and relays
 * messages with policy and audit on the way. Sessions live in this process's memory; with
 * several replicas, `deps.directory` records which replica holds each one, so the others
 * forward its requests here (gateway.forward.ts). An unknown id answers 404.
 */
export class Gateway {
  readonly #deps: GatewayDeps;
  readonly #logger: Logger;
  readonly #sessions = new Map<string, GatewaySession>();
  readonly #upstreams: GatewayUpstreams;
  readonly #audit: GatewayAudit;
  /** What the sessions this gateway creates use of it. */
  readonly #host: SessionHost;
  readonly #reaper: NodeJS.Timeout;
  /** The chat's in-process sessions: not reachable by id, but re-checked like the others. */
  readonly #inProcess = new Set<Recheckable>();
  #recheck: Promise<void> | undefined;
  #recheckAgain = false;
  #closing = false;

  constructor(deps: GatewayDeps) {
    this.#deps = deps;
    this.#logger = deps.logger.child({ feature: 'gateway' });
    this.#upstreams = new GatewayUpstreams(deps, this.#logger);
    this.#audit = new GatewayAudit({ audit: deps.audit, metrics: deps.metrics, logger: this.#logger });
    this.#host = {
      config: deps.config,
      access: deps.access,
      upstreams: this.#upstreams,
      audit: this.#audit,
      usableServers: (principal) => this.usableServers(principal),
      currentGrant: (principal, slug) => this.#currentGrant(principal, slug),
    };
    this.#reaper = setInterval(() => this.#reapIdle(), Math.min(60_000, deps.config.sessionIdleMs));
    this.#reaper.unref();
  }

  get deps(): GatewayDeps {
    return this.#deps;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  get warmProcesses(): number {
    return this.#upstreams.warmCount;
  }

  /** Runs `fn` (handing an HTTP request to a session) with that request's id in scope for logs. */
  inRequest<T>(requestId: string, fn: () => T): T {
    return this.#audit.inRequest(requestId, fn);
  }

  /**
   * The session with this id, if it exists and was opened by the same credential (the same
   * API key, or the same OAuth client and grant, with the same scope): another user's session,
   * or the user's own session opened with another key, is not found.
   */
  findSession(id: string, principal: Principal): GatewaySession | undefined {
    const s = this.#sessions.get(id);
    if (!s || !sameCredential(s.context.principal, principal)) return undefined;
    // The same credential, authenticated just now: its role and groups are the current ones,
    // and every decision the session makes from here on uses them.
    s.context.principal = principal;
    s.lastSeen = Date.now();
    return s;
  }

  /**
   * Re-checks every open session (external and in-process) against the current users,
   * credentials, rules and catalog: principals are re-read (PrincipalSource), a session whose
   * user or credential is gone closes, a server session whose server is no longer usable
   * closes (its next request gets 404, so the client re-initializes and finds it gone), an
   * aggregate session drops such servers and tells its client. Called on every change of
   * users, keys, grants, rules or servers, here or (through the change feed) elsewhere;
   * calls made while one runs are folded into one more run.
   */
  recheckSessions(): void {
    if (this.#recheck) {
      this.#recheckAgain = true;
      return;
    }
    this.#recheck = this.#recheckAll()
      .catch((err: unknown) => this.#logger.warn({ err }, 'could not re-check MCP sessions'))
      .finally(() => {
        this.#recheck = undefined;
        if (this.#recheckAgain) {
          this.#recheckAgain = false;
          this.recheckSessions();
        }
      });
  }

  /** Resolves when the re-check in progress (if any) is done (tests and shutdown). */
  async settled(): Promise<void> {
    while (this.#recheck) await this.#recheck;
  }

  async #recheckAll(): Promise<void> {
    const sessions = [...this.#sessions.values(), ...this.#inProcess];
    // One read per credential, however many sessions it has open.
    const fresh = new Map<string, Promise<Principal | undefined>>();
    await Promise.allSettled(
      sessions.map(async (s) => {
        const before = s.context.principal;
        if (this.#deps.principals) {
          const key = [before.userId, before.via, before.apiKeyId, before.oauthGrantId].join('|');
          if (!fresh.has(key)) fresh.set(key, this.#deps.principals.refresh(before));
          const now = await fresh.get(key)!;
          if (!now) {
            this.#logger.info(
              { sessionId: s.id || undefined, userId: before.userId },
              'closing MCP session: its user or credential is gone',
            );
            this.#forget(s);
            await s.close();
            return;
          }
          // Only the user's current attributes: the credential itself stays the session's.
          s.context.principal = {
            ...before,
            role: now.role,
            groups: now.groups,
            displayName: now.displayName,
          };
        }
        await s.recheck();
      }),
    );
  }

  /**
   * Refuses a new session that would pass a limit (SessionLimitReached: 429 for the user's
   * own limits, 503 for the process's). In-process (chat) sessions count toward the totals
   * but are not refused: a turn holds its session only while it runs.
   */
  #admit(principal: Principal, stdio: number): void {
    const limits = this.#deps.config.limits;
    const all = [...this.#sessions.values(), ...this.#inProcess];
    const mine = all.filter((s) => s.context.principal.userId === principal.userId);
    const processes = (list: Recheckable[]) => list.reduce((n, s) => n + s.stdio, 0);
    const over = (limit: number, used: number, adding: number) => limit > 0 && used + adding > limit;
    if (over(limits.sessionsPerUser, mine.length, 1))
      throw new SessionLimitReached(
        429,
        'GATEWAY_MAX_SESSIONS_PER_USER',
        `Too many open MCP sessions for this user (limit ${limits.sessionsPerUser}): end one (HTTP DELETE) or wait for idle ones to end`,
      );
    if (over(limits.stdioPerUser, processes(mine), stdio))
      throw new SessionLimitReached(
        429,
        'GATEWAY_MAX_STDIO_PER_USER',
        `Too many upstream processes for this user (limit ${limits.stdioPerUser}; this session needs ${stdio}): end a session first`,
      );
    if (over(limits.sessions, all.length, 1))
      throw new SessionLimitReached(
        503,
        'GATEWAY_MAX_SESSIONS',
        'The gateway has too many open MCP sessions; try again later',
      );
    if (over(limits.stdio, processes(all), stdio))
      throw new SessionLimitReached(
        503,
        'GATEWAY_MAX_STDIO',
        'The gateway runs too many upstream processes; try again later',
      );
  }

  #forget(s: Recheckable) {
    for (const [id, session] of this.#sessions) if (session === s) this.#sessions.delete(id);
    this.#inProcess.delete(s);
  }

  async #currentGrant(principal: Principal, slug: string): Promise<string> {
    const server = await this.#deps.registry.get(slug);
    return server ? this.#deps.access.grantOf(principal, server) : '';
  }

  /**
   * Opens an upstream transport for `server` under the caller's credentials (see
   * GatewayUpstreams.connect).
   */
  connectUpstream(
    server: ServerRecord,
    context: SessionContext,
    sessionId?: string,
    options: { pooled?: boolean; userCredentials?: boolean } = {},
  ): Promise<UpstreamConnection> {
    return this.#upstreams.connect(server, context, sessionId, options);
  }

  /** Creates a session for `/mcp/{slug}` from its initialize request; the caller hands the request to the transport. */
  async createServerSession(
    server: ServerRecord,
    context: SessionContext,
    initialize: JSONRPCRequest,
  ): Promise<DownstreamHttpTransport> {
    const stdio = isStdio(server) ? 1 : 0;
    this.#admit(context.principal, stdio);
    const clientInfo = (initialize.params as { clientInfo?: { name?: string; version?: string } } | undefined)
      ?.clientInfo;
    // eslint-disable-next-line prefer-const -- assigned below; the transport's callback closes over it first
    let session: GatewaySession | undefined;
    let credentialScope = 'none';
    let grant = this.#deps.access.grantOf(context.principal, server);
    let upstreamCapabilities: Record<string, unknown> = {};
    let secrets: string[] = [];
    const transport = new DownstreamHttpTransport({
      onSessionInitialized: (id) => {
        if (session) this.#hold(id, session);
      },
      onStandaloneStream: (open) =>
        open ? session?.standaloneStreamOpened() : session?.standaloneStreamClosed(),
    });
    const base = () => ({
      context,
      sessionId: transport.sessionId,
      slug: server.slug,
      clientInfo,
      credentialScope,
      secrets,
    });
    const relay = new McpRelay({
      downstream: transport,
      upstreamName: server.slug,
      createUpstream: async () => {
        const connection = await this.#upstreams.connect(server, context, transport.sessionId);
        credentialScope = connection.credentialScope;
        secrets = connection.secrets;
        return connection.transport;
      },
      requestTimeoutMs: this.#deps.config.requestTimeoutMs,
      initializeTimeoutMs: this.#deps.config.connectTimeoutMs,
      describeFailure: rpcErrorOf,
      trackStandaloneStream: true,
      closeDownstreamOnUpstreamClose: false,
      // context.principal is the session's current principal (see Gateway.findSession).
      authorize: tracePolicy((request) => {
        this.#audit.noteRequest(request);
        return authorizeRequest(this.#deps.access, context.principal, server, request);
      }),
      tracer: relayTracer(() => ({
        server: server.slug,
        sessionId: transport.sessionId,
        userId: context.principal.userId,
      })),
      // What the caller may not use is not listed either.
      transformResult: (method, result) => {
        if (method === 'initialize')
          upstreamCapabilities = (result['capabilities'] as Record<string, unknown> | undefined) ?? {};
        return filterListResult(this.#deps.access, context.principal, server, method, result);
      },
      onSettled: (e) => this.#audit.settled(e, base()),
      onNotification: (direction, n) => this.#audit.notification(direction, n, base()),
      // Errors (upstream failed to start, broke, dropped a message) are warnings; the rest is trace.
      log: (message, error) => {
        const entry = {
          requestId: this.#audit.currentRequestId,
          sessionId: transport.sessionId,
          userId: context.principal.userId,
          server: server.slug,
          err: (error as Error | undefined)?.message,
        };
        if (error) this.#logger.warn(entry, message);
        else this.#logger.debug(entry, message);
      },
      onShutdown: () => {
        if (transport.sessionId) this.#release(transport.sessionId);
      },
    });
    session = {
      id: '',
      kind: 'server',
      slug: server.slug,
      context,
      stdio,
      transport,
      lastSeen: Date.now(),
      standaloneStreamOpened: () => relay.standaloneStreamOpened(),
      standaloneStreamClosed: () => relay.standaloneStreamClosed(),
      close: () => relay.close(),
      recheck: async () => {
        const now = await this.#currentGrant(context.principal, server.slug);
        if (now && now !== grant) {
          // Still usable, but not the same items: the client lists again (those it declared).
          grant = now;
          for (const kind of ['tools', 'prompts', 'resources'])
            if (upstreamCapabilities[kind])
              await transport.send({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
        }
        if (now) return;
        // The session's whole reason is gone: end it. Its id then answers 404 (the spec's
        // answer for a terminated session), so the client re-initializes and is refused there.
        this.#logger.info(
          { sessionId: transport.sessionId, userId: context.principal.userId, server: server.slug },
          'closing MCP session: the server is no longer available to its user',
        );
        this.#audit.sessionEvent(
          'mcp.session_closed',
          base(),
          'the server is no longer available to this user',
        );
        await relay.close();
      },
    };
    await relay.start();
    return transport;
  }

  /** Creates a session for the aggregate endpoint `/mcp`. */
  async createAggregateSession(context: SessionContext): Promise<DownstreamHttpTransport> {
    // Each stdio server the session will reach starts a process of its own (at initialize).
    const stdio = (await this.usableServers(context.principal)).filter(isStdio).length;
    this.#admit(context.principal, stdio);
    // eslint-disable-next-line prefer-const -- assigned below; the transport's callback closes over it first
    let session: GatewaySession | undefined;
    const transport = new DownstreamHttpTransport({
      onSessionInitialized: (id) => {
        if (session) this.#hold(id, session);
      },
      onStandaloneStream: (open) =>
        open ? session?.standaloneStreamOpened() : session?.standaloneStreamClosed(),
    });
    const aggregate = new AggregateSession({
      host: this.#host,
      downstream: transport,
      context,
      onShutdown: () => {
        if (transport.sessionId) this.#release(transport.sessionId);
      },
    });
    session = {
      id: '',
      kind: 'aggregate',
      slug: undefined,
      context,
      stdio,
      transport,
      lastSeen: Date.now(),
      standaloneStreamOpened: () => aggregate.standaloneStreamOpened(),
      standaloneStreamClosed: () => aggregate.standaloneStreamClosed(),
      close: () => aggregate.close(),
      recheck: () => aggregate.recheck(),
    };
    await aggregate.start();
    return transport;
  }

  /**
   * An MCP client inside this process on an aggregate session of its own, for the chat
   * agent: the same routing, access rules, credential scope (the thread's) and audit as an
   * external client on `/mcp`, without HTTP in between. Close the client to end the session.
   * `redact` replaces the credential values the session injected upstream wherever they
   * appear (a tool that echoes its environment), as the audit trail does.
   */
  async connectInProcess(
    context: SessionContext,
    clientInfo: { name: string; version: string },
  ): Promise<{ client: Client; redact: <T>(value: T) => T }> {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    // Audit events and upstream sessions are keyed by the downstream session id.
    serverSide.sessionId = randomUUID();
    // Its own copy: the re-check replaces the principal in it.
    const live: SessionContext = { ...context };
    // eslint-disable-next-line prefer-const -- assigned below; onShutdown closes over it first
    let session: Recheckable | undefined;
    const aggregate = new AggregateSession({
      host: this.#host,
      downstream: serverSide,
      context: live,
      onShutdown: () => {
        if (session) this.#inProcess.delete(session);
      },
    });
    session = {
      id: serverSide.sessionId,
      context: live,
      stdio: (await this.usableServers(live.principal)).filter(isStdio).length,
      close: () => aggregate.close(),
      recheck: () => aggregate.recheck(),
    };
    this.#inProcess.add(session);
    await aggregate.start();
    // The link is always open: notifications need no GET stream to wait for.
    aggregate.standaloneStreamOpened();
    const client = new Client(clientInfo, { capabilities: {} });
    try {
      await client.connect(clientSide);
    } catch (err) {
      await aggregate.close();
      throw err;
    }
    return { client, redact: (value) => scrub(value, aggregate.secretValues()) };
  }

  /**
   * Servers the principal may use through the aggregate endpoint, leaving out those the
   * latest health check found down (a session would only wait for them to fail).
   */
  async usableServers(principal: Principal): Promise<ServerRecord[]> {
    const down = (await this.#deps.upstreamHealth?.downSlugs()) ?? new Set<string>();
    return (await this.#deps.registry.list()).filter(
      (s) => this.#deps.access.canUseServer(principal, s) && !down.has(s.slug),
    );
  }

  /** Capability discovery for the registry (see GatewayUpstreams.discover). */
  discover(server: ServerRecord, principal: Principal | undefined): Promise<Capabilities> {
    return this.#upstreams.discover(server, principal);
  }

  /** Health probe for the monitoring feature (see GatewayUpstreams.healthCheck). */
  healthCheck(server: ServerRecord, options: { timeoutMs: number }): Promise<HealthProbe> {
    return this.#upstreams.healthCheck(server, options);
  }

  /** A session this process now holds; with several replicas, the directory says so. */
  #hold(id: string, session: GatewaySession) {
    this.#sessions.set(id, session);
    this.#deps.directory?.register(id, { userId: session.context.principal.userId, slug: session.slug });
  }

  #release(id: string) {
    this.#sessions.delete(id);
    this.#deps.directory?.remove(id);
  }

  #reapIdle() {
    const cutoff = Date.now() - this.#deps.config.sessionIdleMs;
    for (const [id, s] of this.#sessions) {
      if (s.lastSeen < cutoff) {
        this.#logger.info({ sessionId: id }, 'closing idle MCP session');
        this.#release(id);
        void s.close().catch(() => {});
      }
    }
  }

  /** Ends every session and warm process (shutdown). */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#reaper);
    const sessions = [...this.#sessions.values(), ...this.#inProcess];
    for (const id of [...this.#sessions.keys()]) this.#release(id);
    this.#inProcess.clear();
    await Promise.allSettled(sessions.map((s) => s.close()));
    await this.#upstreams.close();
  }
}
