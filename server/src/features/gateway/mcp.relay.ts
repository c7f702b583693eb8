/**
 * McpRelay — a JSON-RPC message router between ONE downstream MCP session and ONE upstream MCP session.
 *
 * It works at the SDK *Transport* level (onmessage / send), never through `Server`/`McpServer`/`Client`,
 * so every MCP feature (present and future methods, experimental ones, _meta fields) passes through
 * untouched. The relay only rewrites what is *per-connection*:
 *
 *   - JSON-RPC request ids: both peers pick ids from their own counters, so ids are only unique per
 *     direction per connection. Every forwarded request gets a fresh id from the relay's own counter
 *     for that side, and the response is mapped back to the original id.
 *   - `notifications/cancelled.params.requestId`: refers to a request id, so it is remapped the same way.
 *   - Stream routing on the downstream side (Streamable HTTP): each message must be told which SSE
 *     stream to go out on (`relatedRequestId`), because the wire format of the upstream (e.g. stdio)
 *     carries no such information.
 *
 * Everything else (progress tokens, params, results, errors, _meta) is forwarded verbatim.
 *
 * The relay is transport-agnostic on both sides; the Streamable-HTTP specifics (SSE streams, the
 * standalone GET stream) are optional hooks (`closeSSEStream`, `standaloneStreamOpened/Closed`).
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode,
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCErrorResponse,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type JSONRPCResultResponse,
  type ProgressToken,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';

/** The downstream side. `closeSSEStream` exists on the SDK's StreamableHTTPServerTransport. */
export interface DownstreamTransport extends Transport {
  closeSSEStream?(requestId: RequestId): void;
}

/** The upstream side. `terminateSession` exists on the SDK's StreamableHTTPClientTransport. */
export interface UpstreamTransport extends Transport {
  terminateSession?(): Promise<void>;
}

export type TraceEvent =
  | {
      kind: 'forward';
      direction: 'down->up' | 'up->down';
      message: JSONRPCMessage;
      relatedRequestId?: RequestId;
    }
  | { kind: 'drop'; direction: 'down->up' | 'up->down'; message: JSONRPCMessage; reason: string }
  | { kind: 'synthesized'; direction: 'down->up' | 'up->down'; message: JSONRPCMessage; reason: string };

export interface RelayOptions {
  downstream: DownstreamTransport;
  /** Called once, on the first downstream `initialize`. The relay calls `start()` itself. */
  createUpstream: () => UpstreamTransport | Promise<UpstreamTransport>;
  /** Human-readable upstream name, used in error messages sent downstream. */
  upstreamName: string;
  /** Per-request timeout for downstream->upstream requests. Default 60 000 ms. 0 disables. */
  requestTimeoutMs?: number;
  /**
   * Timeout for `initialize`, which includes spawning/connecting the upstream (a cold `node` start of
   * server-everything alone takes ~300 ms; an `npx` install far longer). Default 30 000 ms. 0 disables.
   */
  initializeTimeoutMs?: number;
  /** Restart the timeout when the upstream reports progress for the request. Default true. */
  resetTimeoutOnProgress?: boolean;
  /**
   * If true, messages bound for the downstream *standalone* stream (Streamable HTTP GET SSE) are
   * buffered until the HTTP layer reports the stream open via `standaloneStreamOpened()`.
   * Needed because the SDK server transport silently DROPS standalone messages while no GET stream
   * is connected (unless it has an eventStore), and the SDK client opens its GET stream only after
   * `notifications/initialized` got its 202 — upstream notifications emitted while handling
   * `notifications/initialized` (e.g. tools/list_changed) would otherwise be lost. Default false.
   */
  trackStandaloneStream?: boolean;
  /** Max buffered standalone messages; the oldest are dropped beyond this. Default 1000. */
  standaloneBufferLimit?: number;
  /** Close the downstream session when the upstream goes away (client must re-initialize). Default true. */
  closeDownstreamOnUpstreamClose?: boolean;
  trace?: (event: TraceEvent) => void;
  log?: (message: string, error?: unknown) => void;
  /**
   * Policy hook, asked before a downstream request is forwarded. Returning an error answers the
   * request with it and the upstream never sees the request.
   */
  authorize?: (request: JSONRPCRequest) => { code: number; message: string } | undefined;
  /** Rewrites a result before it goes downstream (policy: e.g. filter tools/list). */
  transformResult?: (
    method: string,
    result: JSONRPCResultResponse['result'],
  ) => JSONRPCResultResponse['result'];
  /** Called once per request when it is answered, timed out, cancelled or failed (audit, metrics). */
  onSettled?: (event: SettledRequest) => void;
  /**
   * Turns a failure to start the upstream or to send it a request into the JSON-RPC error
   * the client gets, when the failure is one the caller knows better (e.g. "connect your
   * account at <link>"). Undefined: the generic "could not take <method>" error.
   */
  describeFailure?: (error: unknown) => { code: number; message: string; data?: unknown } | undefined;
  /** Called for every notification relayed (audit). */
  onNotification?: (
    direction: 'client->upstream' | 'upstream->client',
    notification: JSONRPCNotification,
  ) => void;
  /**
   * Called exactly once when the relay begins shutting down (either side closed). The session is
   * unusable from then on, so the HTTP layer should forget it right away (closing a stdio upstream
   * can take seconds: the SDK gives the child 2 s to exit after stdin EOF before SIGTERM).
   */
  onShutdown?: () => void;
}

/** One request's outcome, reported through `onSettled`. */
export interface SettledRequest {
  direction: 'client->upstream' | 'upstream->client';
  method: string;
  params: JSONRPCRequest['params'];
  latencyMs: number;
  requestBytes: number;
  /** The response as relayed (undefined when the request ended without one: cancelled, failed). */
  response?: JSONRPCResultResponse | JSONRPCErrorResponse;
  /** Why it ended without a response, or the synthesized error's message. */
  outcome: 'answered' | 'timeout' | 'cancelled' | 'failed' | 'denied';
  error?: string;
}

/** A downstream request forwarded upstream, keyed by the upstream id the relay assigned. */
interface PendingUpstreamRequest {
  downstreamId: RequestId;
  method: string;
  params?: JSONRPCRequest['params'];
  startedAt: number;
  requestBytes: number;
  /** Internal requests (upstream restart) are answered to a callback, not downstream. */
  internal?: (response: JSONRPCMessage) => void;
  progressToken?: ProgressToken;
  /** Last progress value relayed; progress MUST increase, so anything else is a duplicate. */
  lastProgress?: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** An upstream-originated request forwarded downstream, keyed by the downstream id the relay assigned. */
interface PendingDownstreamRequest {
  upstreamId: RequestId;
  method: string;
  params?: JSONRPCRequest['params'];
  startedAt: number;
  requestBytes: number;
  /** The downstream request whose SSE stream carried it (undefined = standalone stream). */
  relatedRequestId?: RequestId;
}

export class McpRelay {
  private readonly opts: Required<
    Omit<
      RelayOptions,
      | 'trace'
      | 'log'
      | 'onShutdown'
      | 'authorize'
      | 'onSettled'
      | 'onNotification'
      | 'transformResult'
      | 'describeFailure'
    >
  > &
    Pick<
      RelayOptions,
      | 'trace'
      | 'log'
      | 'onShutdown'
      | 'authorize'
      | 'onSettled'
      | 'onNotification'
      | 'transformResult'
      | 'describeFailure'
    >;
  private readonly downstream: DownstreamTransport;
  private upstream?: UpstreamTransport;

  // Id counters. Separate counters per side keep ids readable in traces; uniqueness is per side.
  private nextUpstreamId = 1;
  private nextDownstreamId = 1;

  private readonly toUpstream = new Map<RequestId, PendingUpstreamRequest>(); // upstreamId -> pending
  private readonly upstreamIdByDownstreamId = new Map<RequestId, RequestId>();
  private readonly upstreamIdByProgressToken = new Map<ProgressToken, RequestId>();
  private readonly toDownstream = new Map<RequestId, PendingDownstreamRequest>(); // downstreamId -> pending
  private readonly downstreamIdByUpstreamId = new Map<RequestId, RequestId>();
  /** Ids of upstream-originated requests already relayed (bounded), to drop replayed duplicates. */
  private readonly seenUpstreamRequestIds = new Set<RequestId>();
  private static readonly SEEN_IDS_LIMIT = 10_000;

  /**
   * Sends are serialized per direction. Transport.send() is async; for stdio and for the SDK server
   * transport it is effectively in-order anyway, but the HTTP client transport does one POST per
   * message, and e.g. a `notifications/cancelled` must not overtake the request it cancels.
   * Serializing also guarantees the upstream session id (learned from the initialize response
   * headers) is known before the next POST goes out.
   */
  private upChain: Promise<void> = Promise.resolve();
  private downChain: Promise<void> = Promise.resolve();

  private standaloneOpen: boolean;
  private standaloneBuffer: JSONRPCMessage[] = [];

  private state: 'new' | 'initializing' | 'ready' | 'upstream-down' | 'closing' | 'closed' = 'new';
  /** The client's initialize request, replayed to a restarted upstream. */
  private initializeRequest?: JSONRPCRequest;
  /** Whether the client has sent notifications/initialized (replayed on restart). */
  private clientInitialized = false;
  private shutdownStarted = false;

  constructor(options: RelayOptions) {
    this.opts = {
      requestTimeoutMs: 60_000,
      initializeTimeoutMs: 30_000,
      resetTimeoutOnProgress: true,
      trackStandaloneStream: false,
      standaloneBufferLimit: 1000,
      closeDownstreamOnUpstreamClose: true,
      ...options,
    };
    this.downstream = options.downstream;
    this.standaloneOpen = !this.opts.trackStandaloneStream;
  }

  /** Wires the downstream transport and starts it. Call before the transport handles any HTTP request. */
  async start(): Promise<void> {
    this.downstream.onmessage = (message) => this.onDownstreamMessage(message);
    this.downstream.onerror = (error) => this.opts.log?.('downstream transport error', error);
    this.downstream.onclose = () => void this.shutdown('downstream closed');
    await this.downstream.start();
  }

  /** Number of in-flight requests, per direction (for tests and metrics). */
  get pendingCounts(): { toUpstream: number; toDownstream: number } {
    return { toUpstream: this.toUpstream.size, toDownstream: this.toDownstream.size };
  }

  get upstreamTransport(): UpstreamTransport | undefined {
    return this.upstream;
  }

  /** HTTP layer hook: the downstream GET SSE stream is now registered in the server transport. */
  standaloneStreamOpened(): void {
    this.standaloneOpen = true;
    const buffered = this.standaloneBuffer;
    this.standaloneBuffer = [];
    for (const message of buffered) this.enqueueDownstream(message, undefined);
  }

  /** HTTP layer hook: the downstream GET SSE stream went away. */
  standaloneStreamClosed(): void {
    if (this.opts.trackStandaloneStream) this.standaloneOpen = false;
  }

  async close(): Promise<void> {
    await this.shutdown('relay closed');
  }

  // ---------------------------------------------------------------------------------------------
  // downstream -> upstream
  // ---------------------------------------------------------------------------------------------

  private onDownstreamMessage(message: JSONRPCMessage): void {
    if (this.state === 'closing' || this.state === 'closed') {
      if (isJSONRPCRequest(message)) {
        this.replyDownstreamError(
          message.id,
          ErrorCode.ConnectionClosed,
          `Relay to upstream "${this.opts.upstreamName}" is closed`,
        );
      }
      return;
    }

    if (isJSONRPCRequest(message)) {
      if (message.method === 'initialize') {
        this.handleInitialize(message);
        return;
      }
      const denied = this.opts.authorize?.(message);
      if (denied) {
        this.opts.onSettled?.({
          direction: 'client->upstream',
          method: message.method,
          params: message.params,
          latencyMs: 0,
          requestBytes: byteLength(message),
          outcome: 'denied',
          error: denied.message,
        });
        this.replyDownstreamError(message.id, denied.code, denied.message);
        return;
      }
      if (this.state === 'upstream-down') this.restartUpstream();
      this.forwardRequestUpstream(message);
    } else if (isJSONRPCNotification(message)) {
      if (message.method === 'notifications/initialized') this.clientInitialized = true;
      this.opts.onNotification?.('client->upstream', message);
      if (this.state === 'upstream-down') return; // nothing to tell a dead upstream; restart replays what matters
      this.forwardNotificationUpstream(message);
    } else if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      this.forwardResponseUpstream(message);
    }
  }

  /**
   * The SDK server transport has already validated the initialize request, minted the session id and
   * (via onsessioninitialized) registered the session before this runs; the HTTP response carrying the
   * `mcp-session-id` header is already being streamed. All the relay must do is bring up the upstream
   * and forward the request; the initialize *result* flows back like any other response.
   */
  private handleInitialize(request: JSONRPCRequest): void {
    if (this.state !== 'new') {
      // Cannot normally happen: the SDK transport rejects re-initialization with HTTP 400 itself.
      this.replyDownstreamError(request.id, ErrorCode.InvalidRequest, 'Session already initialized');
      return;
    }
    this.state = 'initializing';
    this.initializeRequest = request;

    // Bring the upstream up inside the upstream send chain, so anything the downstream sends
    // meanwhile is queued behind it and keeps its order.
    this.upChain = this.upChain.then(async () => {
      try {
        await this.connectUpstream();
        if (this.state === 'initializing') this.state = 'ready';
      } catch (error) {
        this.opts.log?.(`failed to start upstream "${this.opts.upstreamName}"`, error);
        // Rethrow: the forwarding step queued below is skipped and its onError answers the
        // initialize request with an error; then the session is torn down.
        throw new Error(`failed to start: ${errorMessage(error)}`, { cause: error });
      }
    });
    this.forwardRequestUpstream(request);
  }

  private async connectUpstream(): Promise<UpstreamTransport> {
    const upstream = await this.opts.createUpstream();
    this.upstream = upstream;
    // Handlers check identity: a replaced (crashed) upstream's late events must not touch the new one.
    upstream.onmessage = (message) => {
      if (this.upstream === upstream) this.onUpstreamMessage(message);
    };
    upstream.onerror = (error) => this.opts.log?.(`upstream "${this.opts.upstreamName}" error`, error);
    upstream.onclose = () => {
      if (this.upstream === upstream) this.onUpstreamClosed();
    };
    await upstream.start();
    return upstream;
  }

  /**
   * The upstream died earlier and the client sent a new request: start a fresh upstream,
   * replay the client's initialize (and initialized), then let the request through. Session
   * state the old upstream held (subscriptions, log level) is gone; the client sees a working
   * session instead of having to notice and re-initialize.
   */
  private restartUpstream(): void {
    const init = this.initializeRequest;
    if (!init) return;
    this.state = 'initializing';
    this.opts.log?.(`restarting upstream "${this.opts.upstreamName}"`);
    this.upChain = this.upChain
      .then(async () => {
        const upstream = await this.connectUpstream();
        const id = this.nextUpstreamId++;
        const answered = new Promise<JSONRPCMessage>((resolve, reject) => {
          const pending: PendingUpstreamRequest = {
            downstreamId: `__restart-${id}`,
            method: 'initialize',
            startedAt: Date.now(),
            requestBytes: 0,
            internal: resolve,
          };
          this.toUpstream.set(id, pending);
          const timer = setTimeout(() => {
            this.toUpstream.delete(id);
            reject(new Error(`initialize not answered within ${this.opts.initializeTimeoutMs} ms`));
          }, this.opts.initializeTimeoutMs || 30_000);
          timer.unref?.();
          pending.timer = timer;
        });
        await upstream.send({ ...init, id });
        const response = await answered;
        if (!isJSONRPCResultResponse(response)) throw new Error('upstream refused initialize');
        const version = (response.result as { protocolVersion?: string }).protocolVersion;
        if (version) upstream.setProtocolVersion?.(version);
        if (this.clientInitialized)
          await upstream.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
        if (this.state === 'initializing') this.state = 'ready';
      })
      .catch((error) => {
        this.opts.log?.(`upstream "${this.opts.upstreamName}" restart failed`, error);
        this.state = 'upstream-down';
        // Requests queued behind the restart fail through their own onError (no upstream).
        this.upstream = undefined;
        throw error;
      });
  }

  private forwardRequestUpstream(request: JSONRPCRequest): void {
    const upstreamId = this.nextUpstreamId++;
    const progressToken = (request.params?._meta as { progressToken?: ProgressToken } | undefined)
      ?.progressToken;
    const pending: PendingUpstreamRequest = {
      downstreamId: request.id,
      method: request.method,
      params: request.params,
      progressToken,
      startedAt: Date.now(),
      requestBytes: byteLength(request),
    };
    this.toUpstream.set(upstreamId, pending);
    this.upstreamIdByDownstreamId.set(request.id, upstreamId);
    // notifications/progress carries only the token, not a request id: remember which request it
    // belongs to so progress can be sent on that request's SSE stream. The token itself is forwarded
    // unchanged (it is opaque and already unique per session on the downstream side).
    if (progressToken !== undefined) this.upstreamIdByProgressToken.set(progressToken, upstreamId);
    this.armTimeout(upstreamId, pending);

    const forwarded: JSONRPCRequest = { ...request, id: upstreamId };
    this.enqueueUpstream(forwarded, (error) => {
      // The upstream could not even accept the request (process gone, HTTP error, ...).
      if (!this.toUpstream.has(upstreamId)) return;
      this.settleUpstreamRequest(upstreamId);
      const known = this.opts.describeFailure?.(error);
      // The exception's text (addresses, paths, an upstream's response body) goes to the audit
      // trail, never to the client.
      const reason =
        known?.message ?? `Upstream "${this.opts.upstreamName}" could not take ${request.method}`;
      this.report(pending, 'failed', undefined, known?.message ?? `${reason}: ${errorMessage(error)}`);
      this.replyDownstreamError(request.id, known?.code ?? ErrorCode.InternalError, reason, known?.data);
      if (request.method === 'initialize') void this.shutdown('upstream failed to start');
    });
  }

  private forwardNotificationUpstream(notification: JSONRPCNotification): void {
    if (notification.method === 'notifications/cancelled') {
      const downstreamId = (notification.params as { requestId?: RequestId } | undefined)?.requestId;
      const upstreamId =
        downstreamId === undefined ? undefined : this.upstreamIdByDownstreamId.get(downstreamId);
      if (upstreamId === undefined) {
        // Unknown or already-finished request: the spec says to ignore such cancellations.
        this.drop('down->up', notification, 'cancel for unknown request');
        return;
      }
      const cancelled = this.toUpstream.get(upstreamId);
      this.settleUpstreamRequest(upstreamId);
      if (cancelled) this.report(cancelled, 'cancelled', undefined, 'cancelled by the client');
      this.enqueueUpstream({ ...notification, params: { ...notification.params, requestId: upstreamId } });
      // A cancelled request gets no response (spec), so the SDK server transport would keep its
      // POST SSE stream open forever. Close it explicitly; the SDK client does not reconnect a
      // POST stream that had no priming event.
      try {
        this.downstream.closeSSEStream?.(downstreamId!);
      } catch (error) {
        this.opts.log?.('closeSSEStream failed', error);
      }
      return;
    }
    this.enqueueUpstream(notification);
  }

  /** A downstream answer to an upstream-originated request (sampling, elicitation, roots, ping...). */
  private forwardResponseUpstream(response: JSONRPCMessage & { id?: RequestId | null }): void {
    const id = response.id;
    const pending = id === undefined || id === null ? undefined : this.toDownstream.get(id);
    if (!pending) {
      this.drop('down->up', response, 'response to unknown request');
      return;
    }
    this.toDownstream.delete(id!);
    this.downstreamIdByUpstreamId.delete(pending.upstreamId);
    this.opts.onSettled?.({
      direction: 'upstream->client',
      method: pending.method,
      params: pending.params,
      latencyMs: Date.now() - pending.startedAt,
      requestBytes: pending.requestBytes,
      response: response as JSONRPCResultResponse | JSONRPCErrorResponse,
      outcome: 'answered',
    });
    this.enqueueUpstream({ ...response, id: pending.upstreamId } as JSONRPCMessage);
  }

  // ---------------------------------------------------------------------------------------------
  // upstream -> downstream
  // ---------------------------------------------------------------------------------------------

  private onUpstreamMessage(message: JSONRPCMessage): void {
    if (this.state === 'closed') return;
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      this.forwardResponseDownstream(message);
    } else if (isJSONRPCRequest(message)) {
      this.forwardRequestDownstream(message);
    } else if (isJSONRPCNotification(message)) {
      this.forwardNotificationDownstream(message);
    }
  }

  private forwardResponseDownstream(response: JSONRPCMessage & { id?: RequestId | null }): void {
    const upstreamId = response.id;
    const pending =
      upstreamId === undefined || upstreamId === null ? undefined : this.toUpstream.get(upstreamId);
    if (!pending) {
      // Late response after timeout/cancellation/upstream-close: the downstream already got its answer.
      this.drop('up->down', response, 'response to unknown/settled request');
      return;
    }
    this.settleUpstreamRequest(upstreamId!);
    if (pending.internal) {
      pending.internal(response as JSONRPCMessage);
      return;
    }
    this.report(pending, 'answered', response as JSONRPCResultResponse | JSONRPCErrorResponse);

    if (pending.method === 'initialize' && isJSONRPCResultResponse(response)) {
      // Client-level bookkeeping normally done by the SDK `Client`: the HTTP client transport must
      // send the negotiated version in the mcp-protocol-version header of every later request.
      const version = (response.result as { protocolVersion?: string }).protocolVersion;
      if (version) this.upstream?.setProtocolVersion?.(version);
    }
    // A response is routed by its own id (= the downstream request id) onto that request's stream.
    let relayed = { ...response, id: pending.downstreamId } as JSONRPCMessage;
    if (this.opts.transformResult && isJSONRPCResultResponse(relayed)) {
      relayed = { ...relayed, result: this.opts.transformResult(pending.method, relayed.result) };
    }
    this.enqueueDownstream(relayed, undefined);

    if (pending.method === 'initialize' && isJSONRPCErrorResponse(response)) {
      // Upstream refused to initialize: the downstream session is useless.
      void this.shutdown('upstream rejected initialize');
    }
  }

  private forwardRequestDownstream(request: JSONRPCRequest): void {
    // A request id must never be reused within a session (MCP spec), so a repeat is a replay:
    // an HTTP upstream's SSE resumption (Last-Event-ID) can re-deliver events, and with some event
    // stores even events of *other* streams. Relaying it would ask the user twice.
    if (this.seenUpstreamRequestIds.has(request.id)) {
      this.drop('up->down', request, 'duplicate request id (replay)');
      return;
    }
    this.seenUpstreamRequestIds.add(request.id);
    if (this.seenUpstreamRequestIds.size > McpRelay.SEEN_IDS_LIMIT) {
      const [oldest] = this.seenUpstreamRequestIds;
      this.seenUpstreamRequestIds.delete(oldest!);
    }
    const downstreamId = this.nextDownstreamId++;
    const relatedRequestId = this.guessRelatedRequest();
    this.toDownstream.set(downstreamId, {
      upstreamId: request.id,
      method: request.method,
      params: request.params,
      relatedRequestId,
      startedAt: Date.now(),
      requestBytes: byteLength(request),
    });
    this.downstreamIdByUpstreamId.set(request.id, downstreamId);
    this.enqueueDownstream({ ...request, id: downstreamId }, relatedRequestId, (error) => {
      if (!this.toDownstream.delete(downstreamId)) return;
      this.downstreamIdByUpstreamId.delete(request.id);
      this.enqueueUpstream(
        errorResponse(
          request.id,
          ErrorCode.InternalError,
          `Relay could not deliver ${request.method} to the downstream client: ${errorMessage(error)}`,
        ),
      );
    });
  }

  private forwardNotificationDownstream(notification: JSONRPCNotification): void {
    this.opts.onNotification?.('upstream->client', notification);
    if (notification.method === 'notifications/progress') {
      const token = (notification.params as { progressToken?: ProgressToken } | undefined)?.progressToken;
      const upstreamId = token === undefined ? undefined : this.upstreamIdByProgressToken.get(token);
      const pending = upstreamId === undefined ? undefined : this.toUpstream.get(upstreamId);
      if (!pending) {
        // Progress for a finished/cancelled/unknown request: the SDK client would raise an error.
        this.drop('up->down', notification, 'progress for unknown token');
        return;
      }
      // Progress MUST increase; a non-increasing value is a replayed duplicate (see NOTES: SSE
      // resumption of an HTTP upstream can re-deliver progress of in-flight requests).
      const value = (notification.params as { progress?: unknown }).progress;
      if (typeof value === 'number') {
        if (pending.lastProgress !== undefined && value <= pending.lastProgress) {
          this.drop('up->down', notification, 'non-increasing progress (replay)');
          return;
        }
        pending.lastProgress = value;
      }
      if (this.opts.resetTimeoutOnProgress) this.armTimeout(upstreamId!, pending);
      // Same SSE stream as the request's response => progress is seen in order, before the result.
      this.enqueueDownstream(notification, pending.downstreamId);
      return;
    }

    if (notification.method === 'notifications/cancelled') {
      // The upstream cancels one of ITS requests to the downstream client.
      const upstreamReqId = (notification.params as { requestId?: RequestId } | undefined)?.requestId;
      const downstreamId =
        upstreamReqId === undefined ? undefined : this.downstreamIdByUpstreamId.get(upstreamReqId);
      const pending = downstreamId === undefined ? undefined : this.toDownstream.get(downstreamId);
      if (!pending) {
        this.drop('up->down', notification, 'cancel for unknown request');
        return;
      }
      this.toDownstream.delete(downstreamId!);
      this.downstreamIdByUpstreamId.delete(upstreamReqId!);
      this.enqueueDownstream(
        { ...notification, params: { ...notification.params, requestId: downstreamId! } },
        this.isDownstreamRequestOpen(pending.relatedRequestId)
          ? pending.relatedRequestId
          : this.guessRelatedRequest(),
      );
      return;
    }

    this.enqueueDownstream(notification, this.guessRelatedRequest());
  }

  /**
   * Which downstream request does an upstream-originated message (server->client request, logging,
   * list_changed, ...) belong to? Over stdio the SDK server's `relatedRequestId` never reaches the
   * wire, so the relay cannot know. Heuristic: if exactly one downstream request is in flight, use
   * its SSE stream (it is guaranteed to be open, and a server->client request issued by a tool call
   * lands there, in order with the tool's progress and result); otherwise use the standalone GET
   * stream. Either way an SDK client processes the message identically; the choice only matters for
   * ordering and for clients that never open a GET stream.
   */
  private guessRelatedRequest(): RequestId | undefined {
    if (this.toUpstream.size !== 1) return undefined;
    const [only] = this.toUpstream.values();
    return only?.downstreamId;
  }

  private isDownstreamRequestOpen(downstreamId: RequestId | undefined): boolean {
    return downstreamId !== undefined && this.upstreamIdByDownstreamId.has(downstreamId);
  }

  // ---------------------------------------------------------------------------------------------
  // timeouts, failures, shutdown
  // ---------------------------------------------------------------------------------------------

  private armTimeout(upstreamId: RequestId, pending: PendingUpstreamRequest): void {
    if (pending.timer) clearTimeout(pending.timer);
    const ms = pending.method === 'initialize' ? this.opts.initializeTimeoutMs : this.opts.requestTimeoutMs;
    if (!ms) return;
    pending.timer = setTimeout(() => {
      if (this.toUpstream.get(upstreamId) !== pending) return;
      this.settleUpstreamRequest(upstreamId);
      if (pending.internal) return;
      this.report(pending, 'timeout', undefined, `no answer within ${ms} ms`);
      this.replyDownstreamError(
        pending.downstreamId,
        ErrorCode.RequestTimeout,
        `Upstream "${this.opts.upstreamName}" did not answer ${pending.method} within ${ms} ms`,
      );
      if (pending.method === 'initialize') {
        // initialize must not be cancelled (spec); a session whose upstream never came up is dead.
        void this.shutdown('upstream initialize timed out');
        return;
      }
      // Tell the upstream to stop working on it; its late response (if any) will be dropped.
      this.enqueueUpstream({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: upstreamId, reason: `Relay timeout after ${ms} ms` },
      });
    }, ms);
    pending.timer.unref?.();
  }

  /** Forget a downstream->upstream request (answered, failed, timed out or cancelled). */
  private settleUpstreamRequest(upstreamId: RequestId): void {
    const pending = this.toUpstream.get(upstreamId);
    if (!pending) return;
    if (pending.timer) clearTimeout(pending.timer);
    this.toUpstream.delete(upstreamId);
    if (this.upstreamIdByDownstreamId.get(pending.downstreamId) === upstreamId) {
      this.upstreamIdByDownstreamId.delete(pending.downstreamId);
    }
    if (
      pending.progressToken !== undefined &&
      this.upstreamIdByProgressToken.get(pending.progressToken) === upstreamId
    ) {
      this.upstreamIdByProgressToken.delete(pending.progressToken);
    }
  }

  private onUpstreamClosed(): void {
    if (this.shutdownStarted) return; // we closed it ourselves
    this.opts.log?.(`upstream "${this.opts.upstreamName}" closed unexpectedly`);
    this.failAllPending(`Upstream "${this.opts.upstreamName}" closed the connection`);
    if (this.opts.closeDownstreamOnUpstreamClose) {
      void this.shutdown('upstream closed');
    } else {
      // Keep the client's session; the next request starts a fresh upstream (restartUpstream).
      this.state = 'upstream-down';
      this.upstream = undefined;
    }
  }

  private failAllPending(reason: string, notify = true): void {
    for (const [upstreamId, pending] of [...this.toUpstream]) {
      this.settleUpstreamRequest(upstreamId);
      if (pending.internal) continue;
      this.report(pending, 'failed', undefined, reason);
      if (notify)
        this.replyDownstreamError(pending.downstreamId, ErrorCode.InternalError, reason, {
          upstream: this.opts.upstreamName,
        });
    }
    // Upstream-originated requests still waiting on the client: nobody is left to receive answers.
    this.toDownstream.clear();
    this.downstreamIdByUpstreamId.clear();
  }

  private async shutdown(reason: string): Promise<void> {
    if (this.shutdownStarted) return;
    this.shutdownStarted = true;
    this.state = 'closing';
    this.opts.log?.(`relay shutting down: ${reason}`);
    this.opts.onShutdown?.();
    // If the downstream itself is gone there is nobody left to tell.
    this.failAllPending(
      `Relay to upstream "${this.opts.upstreamName}" is shutting down (${reason})`,
      reason !== 'downstream closed',
    );
    this.standaloneBuffer = [];

    const upstream = this.upstream;
    // Let queued error responses reach the client before its streams are torn down.
    await this.downChain;
    await Promise.allSettled([
      (async () => {
        if (!upstream) return;
        if (upstream.terminateSession) await upstream.terminateSession().catch(() => undefined);
        await upstream.close();
      })(),
      reason === 'downstream closed' ? Promise.resolve() : this.downstream.close(),
    ]);
    this.state = 'closed';
  }

  // ---------------------------------------------------------------------------------------------
  // sending
  // ---------------------------------------------------------------------------------------------

  private enqueueUpstream(message: JSONRPCMessage, onError?: (error: unknown) => void): void {
    this.upChain = this.upChain
      .then(async () => {
        const upstream = this.upstream;
        if (!upstream) throw new Error('upstream not started');
        this.opts.trace?.({ kind: 'forward', direction: 'down->up', message });
        await upstream.send(message);
      })
      .catch((error) => {
        if (onError) onError(error);
        else this.opts.log?.(`dropping message for upstream "${this.opts.upstreamName}"`, error);
      });
  }

  private enqueueDownstream(
    message: JSONRPCMessage,
    relatedRequestId: RequestId | undefined,
    onError?: (error: unknown) => void,
  ): void {
    const isResponse = isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message);
    if (!isResponse && relatedRequestId === undefined && !this.standaloneOpen) {
      this.standaloneBuffer.push(message);
      if (this.standaloneBuffer.length > this.opts.standaloneBufferLimit) {
        const dropped = this.standaloneBuffer.shift()!;
        this.drop('up->down', dropped, 'standalone buffer full');
      }
      return;
    }
    this.downChain = this.downChain
      .then(async () => {
        this.opts.trace?.({ kind: 'forward', direction: 'up->down', message, relatedRequestId });
        await this.downstream.send(
          message,
          relatedRequestId === undefined ? undefined : { relatedRequestId },
        );
      })
      .catch((error) => {
        if (onError) onError(error);
        else this.opts.log?.('could not deliver message downstream', error);
      });
  }

  private report(
    pending: PendingUpstreamRequest,
    outcome: SettledRequest['outcome'],
    response?: JSONRPCResultResponse | JSONRPCErrorResponse,
    error?: string,
  ): void {
    this.opts.onSettled?.({
      direction: 'client->upstream',
      method: pending.method,
      params: pending.params,
      latencyMs: Date.now() - pending.startedAt,
      requestBytes: pending.requestBytes,
      outcome,
      ...(response ? { response } : {}),
      ...(error ? { error } : {}),
    });
  }

  /** Records (for tracing) a message the relay deliberately does not forward, and why. */
  private drop(direction: 'down->up' | 'up->down', message: JSONRPCMessage, reason: string): void {
    this.opts.trace?.({ kind: 'drop', direction, message, reason });
  }

  private replyDownstreamError(id: RequestId, code: number, message: string, data?: unknown): void {
    const response = errorResponse(id, code, message, data);
    this.opts.trace?.({ kind: 'synthesized', direction: 'up->down', message: response, reason: message });
    this.enqueueDownstream(response, undefined);
  }
}

function errorResponse(id: RequestId, code: number, message: string, data?: unknown): JSONRPCErrorResponse {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

function byteLength(message: unknown): number {
  return Buffer.byteLength(JSON.stringify(message) ?? '');
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
