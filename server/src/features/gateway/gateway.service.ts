import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCNotification, JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Capabilities } from '@gateway/shared';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditEventInput } from '../../core/audit.ts';
import type { Principal } from '../../core/principal.ts';
import type { ResolvedCredentials } from '../credentials/index.ts';
import type { ServerRecord } from '../registry/index.ts';
import { AggregateSession } from './aggregate.session.ts';
import { rpcErrorOf, RpcCode, UpstreamAuthorizationRequired } from './gateway.errors.ts';
import type { GatewayDeps, SessionContext } from './gateway.ports.ts';
import { McpRelay, type SettledRequest, type UpstreamTransport } from './mcp.relay.ts';
import { remoteUpstream, StdioPool, type UpstreamIdentity } from './upstream.connector.ts';

/** One downstream MCP session: its transport and what relays it. */
export interface GatewaySession {
  readonly id: string;
  readonly kind: 'server' | 'aggregate';
  readonly slug: string | undefined;
  readonly context: SessionContext;
  readonly transport: StreamableHTTPServerTransport;
  /** Called when the GET stream opens/closes, so messages for it are buffered meanwhile. */
  standaloneStreamOpened(): void;
  standaloneStreamClosed(): void;
  close(): Promise<void>;
  lastSeen: number;
}

/** What one health probe learned (see Gateway.healthCheck). */
export interface HealthProbe {
  /** Round trip of the MCP `ping`, in milliseconds. */
  latencyMs: number;
  capabilities?: Capabilities;
  /** Why listing the capabilities failed, when it did (the server still answered ping). */
  capabilitiesError?: string;
}

/** Who health checks connect as: nobody in particular, so no user's credentials are used. */
const HEALTH_CHECK_CONTEXT: SessionContext = {
  principal: {
    userId: '00000000-0000-0000-0000-000000000000',
    displayName: 'health-check',
    role: 'admin',
    via: 'api_key',
  },
};

/** Lists everything an upstream offers (every page of every list its capabilities announce). */
async function listCapabilities(
  client: Client,
  protocolVersion: string,
  timeout: number,
): Promise<Capabilities> {
  const caps = client.getServerCapabilities() ?? {};
  const all = async <T>(fn: (cursor?: string) => Promise<{ nextCursor?: string } & T>, key: keyof T) => {
    const items: unknown[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 50; page++) {
      const r = await fn(cursor);
      items.push(...((r[key] as unknown[]) ?? []));
      cursor = r.nextCursor;
      if (!cursor) break;
    }
    return items;
  };
  const opts = { timeout };
  const [tools, resources, resourceTemplates, prompts] = await Promise.all([
    caps.tools ? all((cursor) => client.listTools({ cursor }, opts), 'tools') : [],
    caps.resources ? all((cursor) => client.listResources({ cursor }, opts), 'resources') : [],
    caps.resources
      ? all((cursor) => client.listResourceTemplates({ cursor }, opts), 'resourceTemplates')
      : [],
    caps.prompts ? all((cursor) => client.listPrompts({ cursor }, opts), 'prompts') : [],
  ]);
  const info = client.getServerVersion();
  return {
    protocolVersion,
    serverInfo: { name: info?.name ?? 'unknown', version: info?.version ?? 'unknown' },
    capabilities: caps as Record<string, unknown>,
    ...(client.getInstructions() ? { instructions: client.getInstructions()! } : {}),
    tools: tools as Capabilities['tools'],
    resources: resources as Capabilities['resources'],
    resourceTemplates: resourceTemplates as Capabilities['resourceTemplates'],
    prompts: prompts as Capabilities['prompts'],
  };
}

/** A connection to one upstream for one session, with the credential scope used (for audit). */
export interface UpstreamConnection {
  transport: UpstreamTransport;
  credentialScope: string;
  /** Secret values this connection carries (credential and static values), scrubbed from audit records. */
  secrets: string[];
}

const textOf = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** Secret values a connection carries: user values of secret fields, and static values (8+ characters). */
function secretValues(server: ServerRecord, userValues: Record<string, string>): string[] {
  const secretFields = new Set(server.credentialFields.filter((f) => f.secret !== false).map((f) => f.name));
  const t = server.resolvedTransport;
  const statics = Object.values(t.type === 'stdio' ? t.env : t.headers);
  const fromUser = Object.entries(userValues)
    .filter(([k]) => secretFields.has(k))
    .map(([, v]) => v);
  // Short values (ports, flags) would mangle unrelated text and protect nothing.
  return [...new Set([...fromUser, ...statics])].filter((v) => v.length >= 8);
}

/** Replaces every occurrence of the given secrets in a JSON-like value. */
export function scrub<T>(value: T, secrets: readonly string[] | undefined): T {
  if (!secrets?.length) return value;
  const text = JSON.stringify(value);
  if (text === undefined) return value;
  let out = text;
  for (const secret of secrets) {
    const encoded = JSON.stringify(secret).slice(1, -1);
    if (out.includes(encoded)) out = out.split(encoded).join('[redacted]');
  }
  return out === text ? value : (JSON.parse(out) as T);
}

/**
 * The MCP gateway: owns downstream sessions (one SDK server transport each), opens one
 * upstream session per downstream session under the caller's credentials, and relays
 * messages with policy and audit on the way. Sessions live in this process's memory:
 * behind a load balancer, route on Mcp-Session-Id (an unknown id answers 404).
 */
export class Gateway {
  readonly #deps: GatewayDeps;
  readonly #logger: Logger;
  readonly #sessions = new Map<string, GatewaySession>();
  readonly #pool: StdioPool;
  readonly #reaper: NodeJS.Timeout;
  /** The HTTP request a message arrived in, so failures it leads to are logged with its id. */
  readonly #requestScope = new AsyncLocalStorage<{ requestId: string }>();
  /**
   * Request id by the params object of a relayed request: a stdio upstream answers outside
   * the HTTP request's async context, but the relay reports the same params object back.
   */
  readonly #requestIds = new WeakMap<object, string>();
  #closing = false;

  constructor(deps: GatewayDeps) {
    this.#deps = deps;
    this.#logger = deps.logger.child({ feature: 'gateway' });
    this.#pool = new StdioPool({
      size: deps.config.stdioPoolSize,
      idleMs: deps.config.stdioPoolIdleMs,
      logger: this.#logger,
    });
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
    return this.#pool.warmCount;
  }

  /** Runs `fn` (handing an HTTP request to a session) with that request's id in scope for logs. */
  inRequest<T>(requestId: string, fn: () => T): T {
    return this.#requestScope.run({ requestId }, fn);
  }

  /** Remembers the HTTP request id of a relayed request, for logs about its outcome. */
  noteRequest(request: JSONRPCRequest): void {
    const requestId = this.#requestScope.getStore()?.requestId;
    if (requestId && request.params) this.#requestIds.set(request.params, requestId);
  }

  #requestIdOf(params: unknown): string | undefined {
    const noted = params && typeof params === 'object' ? this.#requestIds.get(params) : undefined;
    return noted ?? this.#requestScope.getStore()?.requestId;
  }

  /** The session with this id, if it exists and belongs to the same user. */
  findSession(id: string, principal: Principal): GatewaySession | undefined {
    const s = this.#sessions.get(id);
    if (!s || s.context.principal.userId !== principal.userId) return undefined;
    s.lastSeen = Date.now();
    return s;
  }

  /**
   * Opens an upstream transport for `server` under the caller's credentials.
   * `pooled: false` spawns a fresh stdio process instead of taking a warm one;
   * `userCredentials: false` connects with the server's static values only (health checks).
   */
  async connectUpstream(
    server: ServerRecord,
    context: SessionContext,
    sessionId?: string,
    options: { pooled?: boolean; userCredentials?: boolean } = {},
  ): Promise<UpstreamConnection> {
    const resolved: ResolvedCredentials =
      options.userCredentials === false
        ? { values: {}, scope: 'none' }
        : await this.#deps.credentials.resolveForUse(server, {
            userId: context.principal.userId,
            threadId: context.threadId,
            sessionId,
          });
    const missing = server.credentialFields.filter((f) => f.required && !resolved.values[f.name]);
    if (missing.length) {
      throw new Error(
        `no credentials stored for ${server.slug}: set ${missing.map((f) => f.name).join(', ')} ` +
          `with PUT /api/servers/${server.slug}/credentials`,
      );
    }
    const identity: UpstreamIdentity = {
      userId: context.principal.userId,
      threadId: context.threadId,
      values: resolved.values,
    };
    const secrets = secretValues(server, resolved.values);
    if (server.resolvedTransport.type === 'stdio') {
      const transport =
        options.pooled === false
          ? new StdioClientTransport(StdioPool.spawnParams(server, identity))
          : this.#pool.take(server, identity);
      return { transport, credentialScope: resolved.scope, secrets };
    }
    await this.#deps.guardUrl(server.resolvedTransport.url);
    if (server.oauth && this.#deps.upstreamOAuth && options.userCredentials !== false) {
      // The user's own upstream account: the SDK transport sends its tokens and refreshes
      // them; when the user must (re)authorize, the client gets a link to do it.
      const { provider, scope } = await this.#deps.upstreamOAuth.providerFor(server, {
        userId: context.principal.userId,
        threadId: context.threadId,
        sessionId,
      });
      const upstreamAuth = {
        provider,
        authorizationRequired: () => new UpstreamAuthorizationRequired(server.slug, provider.connectUrl),
        wrapFetch: (f: typeof fetch) => provider.serializedRefreshFetch(f),
      };
      return {
        transport: remoteUpstream(server, identity, this.#deps.upstreamFetch, upstreamAuth),
        credentialScope: scope,
        secrets,
      };
    }
    return {
      transport: remoteUpstream(server, identity, this.#deps.upstreamFetch),
      credentialScope: resolved.scope,
      secrets,
    };
  }

  /** Builds the audit record of one relayed request. */
  auditSettled(
    e: SettledRequest,
    base: {
      context: SessionContext;
      sessionId: string | undefined;
      slug: string | undefined;
      clientInfo?: { name?: string; version?: string };
      credentialScope?: string;
      /** Values to scrub from what is recorded (a tool may echo a secret it was given). */
      secrets?: readonly string[];
    },
  ): void {
    const params = (e.params ?? {}) as Record<string, unknown>;
    const response = e.response;
    const isRpcError = response && 'error' in response;
    const result =
      response && 'result' in response ? (response.result as Record<string, unknown>) : undefined;
    const toolError = e.method === 'tools/call' && result?.['isError'] === true;
    const status: AuditEventInput['status'] =
      e.outcome === 'denied'
        ? 'denied'
        : e.outcome !== 'answered' || isRpcError || toolError
          ? 'error'
          : 'ok';
    const error =
      e.error ??
      (isRpcError
        ? `${response.error.code}: ${response.error.message}`
        : toolError
          ? 'tool returned isError'
          : undefined);
    this.#deps.audit.record({
      category: 'mcp',
      action: e.method,
      status,
      userId: base.context.principal.userId,
      serverSlug: base.slug ?? null,
      toolName: e.method === 'tools/call' || e.method === 'prompts/get' ? textOf(params['name']) : undefined,
      resourceUri: textOf(params['uri']),
      threadId: base.context.threadId,
      sessionId: base.sessionId,
      apiKeyId: base.context.principal.apiKeyId,
      oauthClientId: base.context.principal.oauthClientId,
      clientName: base.clientInfo?.name,
      clientVersion: base.clientInfo?.version,
      ip: base.context.ip,
      direction: e.direction,
      // A connect link's state is single-use and bound to the user, but still not for the record.
      error:
        error === undefined
          ? undefined
          : scrub(error.replace(/([?&]state=)[^\s&"]+/g, '$1[redacted]'), base.secrets),
      latencyMs: e.latencyMs,
      requestBytes: e.requestBytes,
      responseBytes: response ? Buffer.byteLength(JSON.stringify(response)) : null,
      credentialScope: base.credentialScope,
      details: scrub(
        {
          ...(params['arguments'] !== undefined ? { arguments: params['arguments'] } : {}),
          ...(result !== undefined ? { result } : {}),
          ...(e.outcome !== 'answered' ? { outcome: e.outcome } : {}),
        },
        base.secrets,
      ),
    });
    const tool = e.method === 'tools/call' || e.method === 'prompts/get' ? textOf(params['name']) : undefined;
    const outcome =
      status === 'ok' ? 'ok' : e.outcome !== 'answered' ? e.outcome : toolError ? 'tool_error' : 'error';
    this.#deps.metrics?.recordMcpRequest({
      server: base.slug ?? '_aggregate',
      method: e.method,
      tool: tool ?? '',
      status: outcome,
      latencyMs: e.latencyMs,
    });
    if (status !== 'ok') {
      // Upstream failures and policy denials, with what an operator needs to find them.
      const entry = {
        requestId: this.#requestIdOf(e.params),
        sessionId: base.sessionId,
        userId: base.context.principal.userId,
        server: base.slug,
        method: e.method,
        tool,
        direction: e.direction,
        outcome,
        error,
        latencyMs: e.latencyMs,
      };
      if (status === 'denied') this.#logger.info(entry, 'MCP request denied');
      else if (toolError) this.#logger.info(entry, 'MCP tool returned an error');
      else this.#logger.warn(entry, 'MCP request failed');
    }
  }

  auditNotification(
    direction: 'client->upstream' | 'upstream->client',
    n: JSONRPCNotification,
    base: { context: SessionContext; sessionId: string | undefined; slug: string | undefined },
  ): void {
    this.#deps.audit.record({
      category: 'mcp',
      action: n.method,
      status: 'ok',
      userId: base.context.principal.userId,
      serverSlug: base.slug ?? null,
      threadId: base.context.threadId,
      sessionId: base.sessionId,
      apiKeyId: base.context.principal.apiKeyId,
      oauthClientId: base.context.principal.oauthClientId,
      ip: base.context.ip,
      direction,
      resourceUri: textOf((n.params as Record<string, unknown> | undefined)?.['uri']),
      details:
        n.method === 'notifications/message' ? { level: (n.params as { level?: string })?.level } : undefined,
    });
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
        if (session) this.#sessions.set(id, session);
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
        const connection = await this.connectUpstream(server, context, transport.sessionId);
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
      onSettled: (e) => this.auditSettled(e, base()),
      onNotification: (direction, n) => this.auditNotification(direction, n, base()),
      // Errors (upstream failed to start, broke, dropped a message) are warnings; the rest is trace.
      log: (message, error) => {
        const entry = {
          requestId: this.#requestScope.getStore()?.requestId,
          sessionId: transport.sessionId,
          userId: context.principal.userId,
          server: server.slug,
          err: (error as Error | undefined)?.message,
        };
        if (error) this.#logger.warn(entry, message);
        else this.#logger.debug(entry, message);
      },
      onShutdown: () => {
        if (transport.sessionId) this.#sessions.delete(transport.sessionId);
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
        if (session) this.#sessions.set(id, session);
      },
    });
    const aggregate = new AggregateSession({
      gateway: this,
      downstream: transport,
      context,
      onShutdown: () => {
        if (transport.sessionId) this.#sessions.delete(transport.sessionId);
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
      gateway: this,
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
    this.noteRequest(request);
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

  /**
   * Capability discovery for the registry: connects as `principal` (or with no user
   * credentials), lists everything, disconnects. Uses the SDK client: discovery is the
   * gateway acting as a client itself, not relaying anyone.
   */
  async discover(server: ServerRecord, principal: Principal | undefined): Promise<Capabilities> {
    const context: SessionContext = {
      principal: principal ?? {
        userId: '00000000-0000-0000-0000-000000000000',
        displayName: 'discovery',
        role: 'admin',
        via: 'api_key',
      },
    };
    const timeout = this.#deps.config.connectTimeoutMs;
    const client = { name: 'mcp-gateway-discovery', timeout, userCredentials: principal !== undefined };
    return this.#asClient(server, context, client, (c, version) =>
      listCapabilities(c, version(), timeout),
    ).catch((err: unknown) => {
      // The capabilities error is shown to everyone who sees the server: not the admin's own link.
      if (rpcErrorOf(err)?.code === RpcCode.AuthorizationRequired) {
        throw new Error(
          `Server "${server.slug}" needs your authorization (OAuth): connect your account, then discover again`,
        );
      }
      throw err;
    });
  }

  /**
   * Health probe for the monitoring feature: connects with no user credentials on a fresh
   * upstream (never a user's warm process), pings, lists the capabilities, disconnects.
   * Rejects when connecting or the ping fails; a failed listing is reported, not thrown.
   * `timeoutMs` bounds each step (initialize, ping, each list call).
   */
  async healthCheck(server: ServerRecord, options: { timeoutMs: number }): Promise<HealthProbe> {
    const timeout = options.timeoutMs;
    const client = { name: 'mcp-gateway-health', timeout, userCredentials: false };
    return this.#asClient(server, HEALTH_CHECK_CONTEXT, client, async (c, version) => {
      const started = performance.now();
      await c.ping({ timeout });
      const latencyMs = performance.now() - started;
      try {
        return { latencyMs, capabilities: await listCapabilities(c, version(), timeout) };
      } catch (err) {
        return { latencyMs, capabilitiesError: (err as Error).message || 'listing failed' };
      }
    });
  }

  /**
   * Runs `use` with the SDK client connected to a fresh upstream of `server`, then closes
   * it. Discovery and health checks are the gateway acting as a client itself.
   */
  async #asClient<T>(
    server: ServerRecord,
    context: SessionContext,
    options: { name: string; timeout: number; userCredentials?: boolean },
    use: (client: Client, protocolVersion: () => string) => Promise<T>,
  ): Promise<T> {
    const { transport } = await this.connectUpstream(server, context, undefined, {
      pooled: false,
      userCredentials: options.userCredentials ?? true,
    }).catch((err: unknown) => {
      throw new Error(`cannot connect: ${(err as Error).message}`);
    });
    let protocolVersion = 'unknown';
    const record = transport as { setProtocolVersion?: (v: string) => void };
    const original = record.setProtocolVersion?.bind(transport);
    record.setProtocolVersion = (v: string) => {
      protocolVersion = v;
      original?.(v);
    };
    const client = new Client({ name: options.name, version: '1.0.0' }, { capabilities: {} });
    try {
      await client.connect(transport, { timeout: options.timeout });
      return await use(client, () => protocolVersion);
    } finally {
      await client.close().catch(() => {});
    }
  }

  #reapIdle() {
    const cutoff = Date.now() - this.#deps.config.sessionIdleMs;
    for (const [id, s] of this.#sessions) {
      if (s.lastSeen < cutoff) {
        this.#logger.info({ sessionId: id }, 'closing idle MCP session');
        this.#sessions.delete(id);
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
    this.#sessions.clear();
    await Promise.allSettled(sessions.map((s) => s.close()));
    await this.#pool.close();
  }
}
