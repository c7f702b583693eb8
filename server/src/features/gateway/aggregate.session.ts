import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { isErrorResponse, isNotification, isRequest, isResult } from './gateway.messages.ts';
import type { ServerRecord } from '../registry/index.ts';
import { openMember, type Member, type MemberSession } from './aggregate.members.ts';
import { mapUri } from './aggregate.names.ts';
import { LIST_METHODS, listItem, mapResult, routeRequest, type Json } from './aggregate.routing.ts';
import { VERSION } from '../../platform/version.ts';
import { RpcCode } from './gateway.errors.ts';
import type { SessionContext } from './gateway.ports.ts';
import type { SessionHost } from './gateway.session.ts';

interface Internal {
  resolve: (m: JSONRPCMessage) => void;
  timer: NodeJS.Timeout;
}

/**
 * One downstream session of the aggregate endpoint `/mcp`. The gateway answers
 * `initialize`, `ping` and the list calls itself (merging every usable server's lists in
 * parallel, leaving out servers that are down); everything else goes to the one member
 * relay its prefixed name or mapped URI points at. Each member is a full McpRelay with its
 * own upstream session under the caller's credentials, so progress, cancellation, logging,
 * subscriptions and server-to-client requests work exactly as on `/mcp/{slug}`.
 */
export class AggregateSession {
  readonly #host: SessionHost;
  /** The client's side: a Streamable HTTP session, or an in-process link (the chat agent). */
  readonly #downstream: Transport;
  readonly #context: SessionContext;
  readonly #onShutdown: () => void;
  readonly #members = new Map<string, Member>();
  /** Client request id -> member slug, for requests forwarded to one member. */
  readonly #forwarded = new Map<RequestId, { slug: string; method: string }>();
  readonly #internal = new Map<string, Internal>();
  /** Aggregate id of a server-to-client request -> member and the id its relay used. */
  readonly #serverRequests = new Map<RequestId, { slug: string; memberId: RequestId }>();
  #nextInternal = 1;
  #nextServerRequest = 1;
  #initialize: JSONRPCRequest | undefined;
  #clientInitialized = false;
  #standaloneOpen = false;
  #standaloneBuffer: JSONRPCMessage[] = [];
  #closed = false;
  #clientInfo: { name?: string; version?: string } | undefined;

  constructor(options: {
    host: SessionHost;
    downstream: Transport;
    context: SessionContext;
    onShutdown: () => void;
  }) {
    this.#host = options.host;
    this.#downstream = options.downstream;
    this.#context = options.context;
    this.#onShutdown = options.onShutdown;
  }

  async start(): Promise<void> {
    this.#downstream.onmessage = (m) => this.#onClientMessage(m);
    this.#downstream.onclose = () => void this.close();
    await this.#downstream.start();
  }

  /** Every credential value injected into this session's upstreams, for redacting them. */
  secretValues(): string[] {
    return [...new Set([...this.#members.values()].flatMap((m) => m.secrets()))];
  }

  standaloneStreamOpened(): void {
    this.#standaloneOpen = true;
    const buffered = this.#standaloneBuffer;
    this.#standaloneBuffer = [];
    for (const m of buffered) void this.#send(m);
  }

  standaloneStreamClosed(): void {
    this.#standaloneOpen = false;
  }

  /**
   * Drops the members whose server the session's principal may no longer use (a rule
   * deleted, a role lowered, the server disabled or removed): their upstream sessions end,
   * requests to them are refused as to an unknown server. When a member was dropped, or a
   * rule now grants other items of a member, the client is told that its lists changed (MCP `notifications/{tools,prompts,resources}/list_changed`, which the
   * session's `initialize` declared) so it lists again without them.
   */
  async recheck(): Promise<void> {
    if (this.#closed) return;
    const changed = new Set<string>();
    for (const [slug, member] of [...this.#members]) {
      const grant = await this.#host.currentGrant(this.#context.principal, slug);
      if (this.#members.get(slug) !== member) continue;
      if (grant) {
        // Still usable; if other items are granted now, the client lists again.
        if (grant !== member.grant)
          for (const kind of ['tools', 'prompts', 'resources'])
            if (!member.capabilities || member.capabilities[kind]) changed.add(kind);
        member.grant = grant;
        continue;
      }
      this.#members.delete(slug);
      for (const kind of ['tools', 'prompts', 'resources'])
        if (!member.capabilities || member.capabilities[kind]) changed.add(kind);
      void member.relay.close();
    }
    for (const kind of changed)
      void this.#send({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onShutdown();
    for (const i of this.#internal.values()) clearTimeout(i.timer);
    this.#internal.clear();
    await Promise.allSettled([...this.#members.values()].map((m) => m.relay.close()));
    await this.#downstream.close().catch(() => {});
  }

  // ----- sending to the client -----

  async #send(message: JSONRPCMessage, relatedRequestId?: RequestId): Promise<void> {
    const isResponse = isResult(message) || isErrorResponse(message);
    if (!isResponse && relatedRequestId === undefined && !this.#standaloneOpen) {
      // The SDK transport drops standalone messages while no GET stream is open.
      this.#standaloneBuffer.push(message);
      if (this.#standaloneBuffer.length > 1000) this.#standaloneBuffer.shift();
      return;
    }
    try {
      await this.#downstream.send(message, relatedRequestId === undefined ? undefined : { relatedRequestId });
    } catch {
      // The request's stream is gone (client disconnected); try the standalone stream for notifications.
      if (!isResponse && relatedRequestId !== undefined) await this.#send(message).catch(() => {});
    }
  }

  #reply(id: RequestId, result: Json) {
    void this.#send({ jsonrpc: '2.0', id, result });
  }

  #error(id: RequestId, code: number, message: string) {
    void this.#send({ jsonrpc: '2.0', id, error: { code, message } });
  }

  // ----- members -----

  #startMembers(servers: ServerRecord[]) {
    const session: MemberSession = {
      host: this.#host,
      context: this.#context,
      sessionId: () => this.#downstream.sessionId,
      clientInfo: () => this.#clientInfo,
      initializeParams: () => this.#initialize!.params ?? {},
      clientInitialized: () => this.#clientInitialized,
      request: (member, method, params, timeoutMs) =>
        this.#internalRequest(member, method, params, timeoutMs),
    };
    for (const server of servers) {
      const slug = server.slug;
      const member = openMember(server, session, (m, o) => this.#fromMember(slug, m, o));
      member.grant = this.#host.access.grantOf(this.#context.principal, server);
      this.#members.set(slug, member);
    }
  }

  #internalRequest(member: Member, method: string, params: Json, timeoutMs: number): Promise<JSONRPCMessage> {
    const id = `__gw-${this.#nextInternal++}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#internal.delete(id);
        resolve({
          jsonrpc: '2.0',
          id,
          error: { code: RpcCode.InternalError, message: `no answer within ${timeoutMs} ms` },
        });
      }, timeoutMs);
      timer.unref();
      this.#internal.set(id, { resolve, timer });
      member.link.onmessage?.({ jsonrpc: '2.0', id, method, params });
    });
  }

  /** Members that are (or become, within `waitMs`) ready; the others are left out. */
  async #readyMembers(waitMs: number): Promise<Member[]> {
    const members = [...this.#members.values()];
    await Promise.race([
      Promise.allSettled(members.map((m) => m.ready)),
      new Promise((r) => setTimeout(r, waitMs).unref()),
    ]);
    return members.filter((m) => m.state === 'ready');
  }

  // ----- client -> gateway -----

  #onClientMessage(message: JSONRPCMessage): void {
    if (this.#closed) return;
    if (isRequest(message)) void this.#onClientRequest(message);
    else if (isNotification(message)) this.#onClientNotification(message);
    else if (isResult(message) || isErrorResponse(message)) {
      const id = message.id as RequestId;
      const target = this.#serverRequests.get(id);
      if (!target) return;
      this.#serverRequests.delete(id);
      this.#members.get(target.slug)?.link.onmessage?.({ ...message, id: target.memberId } as JSONRPCMessage);
    }
  }

  async #onClientRequest(request: JSONRPCRequest): Promise<void> {
    const params = (request.params ?? {}) as Json;
    const started = Date.now();
    switch (request.method) {
      case 'initialize': {
        this.#initialize = request;
        this.#clientInfo = params['clientInfo'] as { name?: string; version?: string } | undefined;
        const requested = String(params['protocolVersion'] ?? '');
        const protocolVersion = SUPPORTED_PROTOCOL_VERSIONS.includes(requested)
          ? requested
          : LATEST_PROTOCOL_VERSION;
        this.#startMembers(await this.#host.usableServers(this.#context.principal));
        this.#reply(request.id, {
          protocolVersion,
          capabilities: {
            tools: { listChanged: true },
            prompts: { listChanged: true },
            resources: { subscribe: true, listChanged: true },
            logging: {},
            completions: {},
          },
          serverInfo: { name: 'mcp-gateway', version: VERSION },
          instructions: `Tools and prompts of ${this.#members.size} MCP servers, named {server}__{name}.`,
        });
        this.#auditLocal(request, started, 'ok');
        return;
      }
      case 'ping':
        this.#reply(request.id, {});
        return;
      case 'logging/setLevel': {
        const members = await this.#readyMembers(this.#listWaitMs());
        await Promise.all(
          members
            .filter((m) => m.capabilities?.['logging'])
            .map((m) =>
              this.#internalRequest(m, 'logging/setLevel', params, this.#host.config.requestTimeoutMs),
            ),
        );
        this.#reply(request.id, {});
        this.#auditLocal(request, started, 'ok');
        return;
      }
      default:
        break;
    }
    const list = LIST_METHODS[request.method];
    if (list) {
      await this.#list(request, list);
      this.#auditLocal(request, started, 'ok');
      return;
    }
    const routed = routeRequest(request.method, params);
    if ('error' in routed) {
      this.#error(request.id, routed.code, routed.error);
      this.#auditLocal(request, started, 'error', routed.error);
      return;
    }
    const member = this.#members.get(routed.slug);
    if (!member) {
      this.#error(request.id, RpcCode.InvalidParams, `unknown server ${routed.slug}`);
      return;
    }
    await member.ready;
    if (member.state !== 'ready' && member.authorizationRequired) {
      // The same "connect your account at <link>" error as on the server's own endpoint.
      void this.#send({ jsonrpc: '2.0', id: request.id, error: member.authorizationRequired });
      this.#auditLocal(request, started, 'error', member.authorizationRequired.message);
      return;
    }
    if (member.state !== 'ready') {
      this.#error(
        request.id,
        RpcCode.InternalError,
        `server ${routed.slug} is unavailable: ${member.error ?? 'not connected'}`,
      );
      return;
    }
    this.#forwarded.set(request.id, { slug: routed.slug, method: request.method });
    member.link.onmessage?.({ ...request, params: routed.params });
  }

  #listWaitMs() {
    return Math.min(this.#host.config.connectTimeoutMs, 10_000);
  }

  async #list(
    request: JSONRPCRequest,
    list: { key: string; kind: 'name' | 'uri' | 'template'; capability: string },
  ) {
    const members = (await this.#readyMembers(this.#listWaitMs())).filter(
      (m) => m.capabilities?.[list.capability],
    );
    const results = await Promise.all(
      members.map(async (m) => {
        const items: Json[] = [];
        let cursor: string | undefined;
        for (let page = 0; page < 20; page++) {
          const r = await this.#internalRequest(
            m,
            request.method,
            cursor ? { cursor } : {},
            this.#host.config.requestTimeoutMs,
          );
          if (!isResult(r)) break;
          const result = r.result as Json;
          items.push(...((result[list.key] as Json[] | undefined) ?? []));
          cursor = result['nextCursor'] as string | undefined;
          if (!cursor) break;
        }
        // Already filtered by the member relay's policy (gateway.policy.ts).
        return items.map((item) => listItem(list.kind, m.server, item));
      }),
    );
    this.#reply(request.id, { [list.key]: results.flat() });
  }

  #onClientNotification(n: JSONRPCNotification): void {
    if (n.method === 'notifications/initialized') {
      this.#clientInitialized = true;
      for (const m of this.#members.values()) if (m.state === 'ready') m.link.onmessage?.(n);
      return;
    }
    if (n.method === 'notifications/cancelled') {
      const requestId = (n.params as { requestId?: RequestId } | undefined)?.requestId;
      const target = requestId === undefined ? undefined : this.#forwarded.get(requestId);
      if (target) this.#members.get(target.slug)?.link.onmessage?.(n);
      return;
    }
    for (const m of this.#members.values()) if (m.state === 'ready') m.link.onmessage?.(n);
  }

  // ----- member -> client -----

  #fromMember(slug: string, message: JSONRPCMessage, options?: TransportSendOptions): void {
    if (this.#closed) return;
    if (isResult(message) || isErrorResponse(message)) {
      const id = message.id as RequestId;
      const internal = typeof id === 'string' ? this.#internal.get(id) : undefined;
      if (internal) {
        clearTimeout(internal.timer);
        this.#internal.delete(id as string);
        internal.resolve(message);
        return;
      }
      const forwarded = this.#forwarded.get(id);
      if (!forwarded) return;
      this.#forwarded.delete(id);
      if (isResult(message)) {
        void this.#send({ ...message, result: mapResult(slug, forwarded.method, message.result as Json) });
      } else void this.#send(message);
      return;
    }
    const related = options?.relatedRequestId;
    if (isRequest(message)) {
      const id = `gw-${this.#nextServerRequest++}`;
      this.#serverRequests.set(id, { slug, memberId: message.id });
      void this.#send({ ...message, id }, related);
      return;
    }
    if (isNotification(message)) {
      const params = (message.params ?? {}) as Json;
      switch (message.method) {
        case 'notifications/resources/updated':
          void this.#send(
            { ...message, params: { ...params, uri: mapUri(slug, String(params['uri'])) } },
            related,
          );
          return;
        case 'notifications/cancelled': {
          const memberId = params['requestId'] as RequestId;
          const entry = [...this.#serverRequests].find(([, v]) => v.slug === slug && v.memberId === memberId);
          if (!entry) return;
          this.#serverRequests.delete(entry[0]);
          void this.#send({ ...message, params: { ...params, requestId: entry[0] } }, related);
          return;
        }
        case 'notifications/message':
          void this.#send(
            {
              ...message,
              params: { ...params, logger: params['logger'] ? `${slug}/${String(params['logger'])}` : slug },
            },
            related,
          );
          return;
        default:
          void this.#send(message, related);
      }
    }
  }

  #auditLocal(request: JSONRPCRequest, started: number, status: 'ok' | 'error', error?: string) {
    this.#host.audit.settled(
      {
        direction: 'client->upstream',
        method: request.method,
        params: undefined,
        latencyMs: Date.now() - started,
        requestBytes: Buffer.byteLength(JSON.stringify(request)),
        outcome: status === 'ok' ? 'answered' : 'failed',
        ...(error ? { error } : {}),
      },
      {
        context: this.#context,
        sessionId: this.#downstream.sessionId,
        slug: undefined,
        clientInfo: this.#clientInfo,
      },
    );
  }
}
