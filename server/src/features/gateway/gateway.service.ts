import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Capabilities } from '@gateway/shared';
import { sameCredential, type Principal } from '../../core/principal.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { ServerRecord } from '../registry/index.ts';
import { AggregateSession } from './aggregate.session.ts';
import { GatewayAudit, scrub, textOf } from './gateway.audit.ts';
import { rpcErrorOf, RpcCode } from './gateway.errors.ts';
import type { GatewayDeps, SessionContext } from './gateway.ports.ts';
import type { GatewaySession, SessionHost } from './gateway.session.ts';
import { GatewayUpstreams, type HealthProbe, type UpstreamConnection } from './gateway.upstreams.ts';
import { McpRelay } from './mcp.relay.ts';

export type { GatewaySession } from './gateway.session.ts';
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
    s.lastSeen = Date.now();
    return s;
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
  ): Promise<StreamableHTTPServerTransport> {
    const clientInfo = (initialize.params as { clientInfo?: { name?: string; version?: string } } | undefined)
      ?.clientInfo;
    // eslint-disable-next-line prefer-const -- assigned below; the transport's callback closes over it first
    let session: GatewaySession | undefined;
    let credentialScope = 'none';
    let secrets: string[] = [];
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        if (session) this.#hold(id, session);
      },
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
      authorize: (request) => this.#authorize(server, context.principal, request),
      transformResult: (method, result) => {
        // A tool the caller may not call is not listed either.
        if (method !== 'tools/list' || !Array.isArray(result['tools'])) return result;
        const tools = (result['tools'] as { name: string }[]).filter((t) =>
          this.#deps.access.canCallTool(context.principal, server, t.name),
        );
        return { ...result, tools };
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
      transport,
      lastSeen: Date.now(),
      standaloneStreamOpened: () => relay.standaloneStreamOpened(),
      standaloneStreamClosed: () => relay.standaloneStreamClosed(),
      close: () => relay.close(),
    };
    await relay.start();
    return transport;
  }

  /** Creates a session for the aggregate endpoint `/mcp`. */
  async createAggregateSession(context: SessionContext): Promise<StreamableHTTPServerTransport> {
    // eslint-disable-next-line prefer-const -- assigned below; the transport's callback closes over it first
    let session: GatewaySession | undefined;
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        if (session) this.#hold(id, session);
      },
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
      transport,
      lastSeen: Date.now(),
      standaloneStreamOpened: () => aggregate.standaloneStreamOpened(),
      standaloneStreamClosed: () => aggregate.standaloneStreamClosed(),
      close: () => aggregate.close(),
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
    const aggregate = new AggregateSession({
      host: this.#host,
      downstream: serverSide,
      context,
      onShutdown: () => {},
    });
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

  /** Policy on every request: tool-level access for tools/call. */
  #authorize(server: ServerRecord, principal: Principal, request: JSONRPCRequest) {
    this.#audit.noteRequest(request);
    if (request.method === 'tools/call') {
      const name = textOf((request.params as Record<string, unknown> | undefined)?.['name']) ?? '';
      if (!this.#deps.access.canCallTool(principal, server, name)) {
        return {
          code: RpcCode.Forbidden,
          message: `tool ${name} of server ${server.slug} is not allowed for you`,
        };
      }
    }
    return undefined;
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
    const sessions = [...this.#sessions.values()];
    for (const id of [...this.#sessions.keys()]) this.#release(id);
    await Promise.allSettled(sessions.map((s) => s.close()));
    await this.#upstreams.close();
  }
}
