import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { isErrorResponse, isResult } from './gateway.messages.ts';
import type { ServerRecord } from '../registry/index.ts';
import { prefixName } from './aggregate.names.ts';
import type { Json } from './aggregate.routing.ts';
import { rpcErrorOf, RpcCode, type RpcError } from './gateway.errors.ts';
import { authorizeRequest, filterListResult } from './gateway.policy.ts';
import type { SessionContext } from './gateway.ports.ts';
import type { SessionHost } from './gateway.session.ts';
import { relayTracer, tracePolicy } from './gateway.tracing.ts';
import { McpRelay } from './mcp.relay.ts';

/** The relay's "downstream": a transport whose other end is the aggregate session. */
export class MemberLink implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  readonly #deliver: (message: JSONRPCMessage, options?: TransportSendOptions) => void;
  readonly #closed: () => void;
  constructor(deliver: (m: JSONRPCMessage, o?: TransportSendOptions) => void, closed: () => void) {
    this.#deliver = deliver;
    this.#closed = closed;
  }
  async start(): Promise<void> {}
  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    this.#deliver(message, options);
  }
  async close(): Promise<void> {
    this.#closed();
    this.onclose?.();
  }
}

export interface Member {
  server: ServerRecord;
  link: MemberLink;
  relay: McpRelay;
  /** Resolves when the upstream answered initialize; rejects when it cannot be reached. */
  ready: Promise<void>;
  state: 'starting' | 'ready' | 'failed';
  error?: string;
  /** The member needs the user to connect their account (OAuth): calls to it get this error. */
  authorizationRequired?: RpcError;
  capabilities?: Json;
  /** What the principal may use of the server, as of the last check (AccessService.grantOf). */
  grant?: string;
  /** The credential values injected into this member's upstream (once it connected). */
  secrets: () => readonly string[];
}

/** What a member needs from the aggregate session it belongs to. */
export interface MemberSession {
  readonly host: SessionHost;
  readonly context: SessionContext;
  /** The downstream session id (audit events and upstream sessions are keyed by it). */
  sessionId(): string | undefined;
  clientInfo(): { name?: string; version?: string } | undefined;
  /** The client's initialize params, replayed to the member's upstream. */
  initializeParams(): Json;
  /** Whether the client already sent notifications/initialized (the member then gets it too). */
  clientInitialized(): boolean;
  /** A request the aggregate session asks the member itself (initialize, the list calls). */
  request(member: Member, method: string, params: Json, timeoutMs: number): Promise<JSONRPCMessage>;
}

/**
 * Opens one member of an aggregate session: a full McpRelay to `server`'s upstream under the
 * caller's credentials, whose "downstream" is an in-memory link back to the session. `ready`
 * settles once the upstream answered initialize (or could not). `deliver` takes what the
 * member's relay sends toward the client.
 */
export function openMember(
  server: ServerRecord,
  session: MemberSession,
  deliver: (message: JSONRPCMessage, options?: TransportSendOptions) => void,
): Member {
  const { host, context } = session;
  const slug = server.slug;
  let credentialScope = 'none';
  let secrets: string[] = [];
  const link = new MemberLink(deliver, () => {
    if (member.state !== 'failed') {
      member.state = 'failed';
      member.error ??= 'upstream session closed';
    }
  });
  const base = () => ({
    context,
    sessionId: session.sessionId(),
    slug,
    clientInfo: session.clientInfo(),
    credentialScope,
    secrets,
  });
  const relay = new McpRelay({
    downstream: link,
    upstreamName: slug,
    createUpstream: async () => {
      const c = await host.upstreams.connect(server, context, session.sessionId());
      credentialScope = c.credentialScope;
      secrets = c.secrets;
      return c.transport;
    },
    requestTimeoutMs: host.config.requestTimeoutMs,
    initializeTimeoutMs: host.config.connectTimeoutMs,
    describeFailure: rpcErrorOf,
    closeDownstreamOnUpstreamClose: false,
    // The aggregate session's own list calls pass here too, so they are filtered like the
    // client's; context.principal is the session's current principal.
    authorize: tracePolicy((request) => {
      host.audit.noteRequest(request);
      return authorizeRequest(host.access, context.principal, server, request, (n) => prefixName(slug, n));
    }),
    transformResult: (method, result) =>
      filterListResult(host.access, context.principal, server, method, result),
    tracer: relayTracer(() => ({
      server: slug,
      sessionId: session.sessionId(),
      userId: context.principal.userId,
    })),
    onSettled: (e) => {
      if (e.method !== 'initialize' || e.outcome !== 'answered') host.audit.settled(e, base());
    },
    onNotification: (direction, n) => host.audit.notification(direction, n, base()),
  });
  const member: Member = {
    server,
    link,
    relay,
    state: 'starting',
    ready: Promise.resolve(),
    secrets: () => secrets,
  };
  member.ready = (async () => {
    await relay.start();
    const response = await session.request(
      member,
      'initialize',
      session.initializeParams(),
      host.config.connectTimeoutMs,
    );
    if (isErrorResponse(response) && response.error.code === RpcCode.AuthorizationRequired) {
      member.authorizationRequired = response.error;
    }
    if (!isResult(response)) {
      throw new Error(isErrorResponse(response) ? response.error.message : 'no answer to initialize');
    }
    member.capabilities = ((response.result as Json)['capabilities'] as Json) ?? {};
    member.state = 'ready';
    if (session.clientInitialized())
      link.onmessage?.({ jsonrpc: '2.0', method: 'notifications/initialized' });
  })().catch((err: unknown) => {
    member.state = 'failed';
    member.error = (err as Error).message;
    void relay.close();
  });
  return member;
}
