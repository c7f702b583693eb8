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
import type {
  DownstreamTransport,
  RelayOptions,
  SettledRequest,
  UpstreamTransport,
} from './relay.options.ts';
import { byteLength, errorMessage, errorResponse, RelayOutbox } from './relay.outbox.ts';
import { RelayRequests, type PendingUpstreamRequest } from './relay.requests.ts';

export type {
  DownstreamTransport,
  RelayOptions,
  SettledRequest,
  TraceEvent,
  UpstreamTransport,
} from './relay.options.ts';

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

  private readonly requests = new RelayRequests();
  private readonly outbox: RelayOutbox;

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
    this.outbox = new RelayOutbox({
      downstream: options.downstream,
      upstream: () => this.upstream,
      upstreamName: this.opts.upstreamName,
      trackStandaloneStream: this.opts.trackStandaloneStream,
      standaloneBufferLimit: this.opts.standaloneBufferLimit,
      trace: this.opts.trace,
      log: this.opts.log,
    });
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
    return this.requests.counts;
  }

  get upstreamTransport(): UpstreamTransport | undefined {
    return this.upstream;
  }

  /** HTTP layer hook: the downstream GET SSE stream is now registered in the server transport. */
  standaloneStreamOpened(): void {
    this.outbox.standaloneStreamOpened();
  }

  /** HTTP layer hook: the downstream GET SSE stream went away. */
  standaloneStreamClosed(): void {
    this.outbox.standaloneStreamClosed();
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
    this.outbox.queueUpstreamTask(async () => {
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
    this.outbox.queueUpstreamTask(async () => {
      try {
        const upstream = await this.connectUpstream();
        let id = 0;
        const answered = new Promise<JSONRPCMessage>((resolve, reject) => {
          const pending: PendingUpstreamRequest = {
            downstreamId: '',
            method: 'initialize',
            startedAt: Date.now(),
            requestBytes: 0,
            internal: resolve,
          };
          id = this.requests.addInternal(pending);
          pending.downstreamId = `__restart-${id}`;
          const timer = setTimeout(() => {
            this.requests.settleUpstream(id);
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
      } catch (error) {
        this.opts.log?.(`upstream "${this.opts.upstreamName}" restart failed`, error);
        this.state = 'upstream-down';
        // Requests queued behind the restart fail through their own onError (no upstream).
        this.upstream = undefined;
        throw error;
      }
    });
  }

  private forwardRequestUpstream(request: JSONRPCRequest): void {
    const { upstreamId, pending } = this.requests.addUpstream(request);
    this.armTimeout(upstreamId, pending);

    const forwarded: JSONRPCRequest = { ...request, id: upstreamId };
    this.enqueueUpstream(forwarded, (error) => {
      // The upstream could not even accept the request (process gone, HTTP error, ...).
      if (!this.requests.upstream(upstreamId)) return;
      this.requests.settleUpstream(upstreamId);
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
      const upstreamId = this.requests.upstreamIdOf(downstreamId);
      if (upstreamId === undefined) {
        // Unknown or already-finished request: the spec says to ignore such cancellations.
        this.drop('down->up', notification, 'cancel for unknown request');
        return;
      }
      const cancelled = this.requests.upstream(upstreamId);
      this.requests.settleUpstream(upstreamId);
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
    const pending = this.requests.takeDownstream(response.id);
    if (!pending) {
      this.drop('down->up', response, 'response to unknown request');
      return;
    }
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
    const pending = this.requests.upstream(upstreamId);
    if (!pending) {
      // Late response after timeout/cancellation/upstream-close: the downstream already got its answer.
      this.drop('up->down', response, 'response to unknown/settled request');
      return;
    }
    this.requests.settleUpstream(upstreamId!);
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
    if (this.requests.isReplay(request.id)) {
      this.drop('up->down', request, 'duplicate request id (replay)');
      return;
    }
    const relatedRequestId = this.guessRelatedRequest();
    const downstreamId = this.requests.addDownstream(request, relatedRequestId);
    this.enqueueDownstream({ ...request, id: downstreamId }, relatedRequestId, (error) => {
      if (!this.requests.takeDownstream(downstreamId)) return;
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
      const inFlight = this.requests.byProgressToken(token);
      if (!inFlight) {
        // Progress for a finished/cancelled/unknown request: the SDK client would raise an error.
        this.drop('up->down', notification, 'progress for unknown token');
        return;
      }
      const { upstreamId, pending } = inFlight;
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
      if (this.opts.resetTimeoutOnProgress) this.armTimeout(upstreamId, pending);
      // Same SSE stream as the request's response => progress is seen in order, before the result.
      this.enqueueDownstream(notification, pending.downstreamId);
      return;
    }

    if (notification.method === 'notifications/cancelled') {
      // The upstream cancels one of ITS requests to the downstream client.
      const upstreamReqId = (notification.params as { requestId?: RequestId } | undefined)?.requestId;
      const downstreamId = this.requests.downstreamIdOf(upstreamReqId);
      const pending = this.requests.takeDownstream(downstreamId);
      if (!pending) {
        this.drop('up->down', notification, 'cancel for unknown request');
        return;
      }
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
    return this.requests.onlyDownstreamId();
  }

  private isDownstreamRequestOpen(downstreamId: RequestId | undefined): boolean {
    return this.requests.upstreamIdOf(downstreamId) !== undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // timeouts, failures, shutdown
  // ---------------------------------------------------------------------------------------------

  private armTimeout(upstreamId: RequestId, pending: PendingUpstreamRequest): void {
    if (pending.timer) clearTimeout(pending.timer);
    const ms = pending.method === 'initialize' ? this.opts.initializeTimeoutMs : this.opts.requestTimeoutMs;
    if (!ms) return;
    pending.timer = setTimeout(() => {
      if (this.requests.upstream(upstreamId) !== pending) return;
      this.requests.settleUpstream(upstreamId);
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
    for (const [upstreamId, pending] of this.requests.upstreamEntries()) {
      this.requests.settleUpstream(upstreamId);
      if (pending.internal) continue;
      this.report(pending, 'failed', undefined, reason);
      if (notify)
        this.replyDownstreamError(pending.downstreamId, ErrorCode.InternalError, reason, {
          upstream: this.opts.upstreamName,
        });
    }
    // Upstream-originated requests still waiting on the client: nobody is left to receive answers.
    this.requests.clearDownstream();
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
    this.outbox.clearStandalone();

    const upstream = this.upstream;
    // Let queued error responses reach the client before its streams are torn down.
    await this.outbox.downstreamDrained();
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
    this.outbox.toUpstream(message, onError);
  }

  private enqueueDownstream(
    message: JSONRPCMessage,
    relatedRequestId: RequestId | undefined,
    onError?: (error: unknown) => void,
  ): void {
    this.outbox.toDownstream(message, relatedRequestId, onError);
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

  private drop(direction: 'down->up' | 'up->down', message: JSONRPCMessage, reason: string): void {
    this.outbox.drop(direction, message, reason);
  }

  private replyDownstreamError(id: RequestId, code: number, message: string, data?: unknown): void {
    this.outbox.replyDownstreamError(id, code, message, data);
  }
}
