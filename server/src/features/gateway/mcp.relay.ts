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
  type JSONRPCErrorResponse,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type JSONRPCResultResponse,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { isErrorResponse, isNotification, isRequest, isResult } from './gateway.messages.ts';
import { RelayContext } from './relay.context.ts';
import { RelayFromUpstream } from './relay.from-upstream.ts';
import { RelayLifecycle } from './relay.lifecycle.ts';
import type { RelayOptions, RelayRequestTrace, UpstreamTransport } from './relay.options.ts';
import { byteLength, errorMessage } from './relay.outbox.ts';
import type { PendingUpstreamRequest } from './relay.requests.ts';

export type {
  DownstreamTransport,
  RelayOptions,
  SettledRequest,
  TraceEvent,
  UpstreamTransport,
} from './relay.options.ts';

/**
 * The relay of one session. This class takes the downstream -> upstream direction and brings
 * the upstream up (and back after a crash); RelayFromUpstream takes the other direction and
 * RelayLifecycle timeouts and shutdown, all over one shared RelayContext.
 */
export class McpRelay {
  private readonly ctx: RelayContext;
  private readonly lifecycle: RelayLifecycle;
  private readonly fromUpstream: RelayFromUpstream;

  /** The client's initialize request, replayed to a restarted upstream. */
  private initializeRequest?: JSONRPCRequest;
  /** Whether the client has sent notifications/initialized (replayed on restart). */
  private clientInitialized = false;

  constructor(options: RelayOptions) {
    this.ctx = new RelayContext(options);
    this.lifecycle = new RelayLifecycle(this.ctx);
    this.fromUpstream = new RelayFromUpstream(this.ctx, this.lifecycle);
  }

  /** Wires the downstream transport and starts it. Call before the transport handles any HTTP request. */
  async start(): Promise<void> {
    const { downstream, opts } = this.ctx;
    downstream.onmessage = (message) => this.onDownstreamMessage(message);
    downstream.onerror = (error) => opts.log?.('downstream transport error', error);
    downstream.onclose = () => void this.lifecycle.shutdown('downstream closed');
    await downstream.start();
  }

  /** Number of in-flight requests, per direction (for tests and metrics). */
  get pendingCounts(): { toUpstream: number; toDownstream: number } {
    return this.ctx.requests.counts;
  }

  get upstreamTransport(): UpstreamTransport | undefined {
    return this.ctx.upstream;
  }

  /** HTTP layer hook: the downstream GET SSE stream is now registered in the server transport. */
  standaloneStreamOpened(): void {
    this.ctx.outbox.standaloneStreamOpened();
  }

  /** HTTP layer hook: the downstream GET SSE stream went away. */
  standaloneStreamClosed(): void {
    this.ctx.outbox.standaloneStreamClosed();
  }

  async close(): Promise<void> {
    await this.lifecycle.shutdown('relay closed');
  }

  // ---------------------------------------------------------------------------------------------
  // downstream -> upstream
  // ---------------------------------------------------------------------------------------------

  private onDownstreamMessage(message: JSONRPCMessage): void {
    const { opts, outbox } = this.ctx;
    if (this.ctx.state === 'closing' || this.ctx.state === 'closed') {
      if (isRequest(message)) {
        outbox.replyDownstreamError(
          message.id,
          ErrorCode.ConnectionClosed,
          `Relay to upstream "${opts.upstreamName}" is closed`,
        );
      }
      return;
    }

    if (isRequest(message)) {
      if (message.method === 'initialize') {
        this.handleInitialize(message);
        return;
      }
      const denied = opts.authorize?.(message);
      if (denied) {
        opts.onSettled?.({
          direction: 'client->upstream',
          method: message.method,
          params: message.params,
          latencyMs: 0,
          requestBytes: byteLength(message),
          outcome: 'denied',
          error: denied.message,
        });
        outbox.replyDownstreamError(message.id, denied.code, denied.message);
        return;
      }
      if (this.ctx.state === 'upstream-down') this.restartUpstream();
      this.forwardRequestUpstream(message);
    } else if (isNotification(message)) {
      if (message.method === 'notifications/initialized') this.clientInitialized = true;
      opts.onNotification?.('client->upstream', message);
      if (this.ctx.state === 'upstream-down') return; // nothing to tell a dead upstream; restart replays what matters
      this.forwardNotificationUpstream(message);
    } else if (isResult(message) || isErrorResponse(message)) {
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
    const { opts, outbox } = this.ctx;
    if (this.ctx.state !== 'new') {
      // Cannot normally happen: the SDK transport rejects re-initialization with HTTP 400 itself.
      outbox.replyDownstreamError(request.id, ErrorCode.InvalidRequest, 'Session already initialized');
      return;
    }
    this.ctx.state = 'initializing';
    this.initializeRequest = request;

    // Bring the upstream up inside the upstream send chain, so anything the downstream sends
    // meanwhile is queued behind it and keeps its order.
    outbox.queueUpstreamTask(async () => {
      try {
        await this.connectUpstream();
        if (this.ctx.state === 'initializing') this.ctx.state = 'ready';
      } catch (error) {
        opts.log?.(`failed to start upstream "${opts.upstreamName}"`, error);
        // Rethrow: the forwarding step queued below is skipped and its onError answers the
        // initialize request with an error; then the session is torn down.
        throw new Error(`failed to start: ${errorMessage(error)}`, { cause: error });
      }
    });
    this.forwardRequestUpstream(request);
  }

  private connectUpstream(): Promise<UpstreamTransport> {
    const { tracer } = this.ctx.opts;
    return tracer ? tracer.connect(() => this.openUpstream()) : this.openUpstream();
  }

  private async openUpstream(): Promise<UpstreamTransport> {
    const { opts } = this.ctx;
    const upstream = await opts.createUpstream();
    this.ctx.upstream = upstream;
    // Handlers check identity: a replaced (crashed) upstream's late events must not touch the new one.
    upstream.onmessage = (message) => {
      if (this.ctx.upstream === upstream) this.fromUpstream.onMessage(message);
    };
    upstream.onerror = (error) => opts.log?.(`upstream "${opts.upstreamName}" error`, error);
    upstream.onclose = () => {
      if (this.ctx.upstream === upstream) this.lifecycle.onUpstreamClosed();
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
    const { opts, requests, outbox } = this.ctx;
    const init = this.initializeRequest;
    if (!init) return;
    this.ctx.state = 'initializing';
    opts.log?.(`restarting upstream "${opts.upstreamName}"`);
    outbox.queueUpstreamTask(async () => {
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
          id = requests.addInternal(pending);
          pending.downstreamId = `__restart-${id}`;
          const timer = setTimeout(() => {
            requests.settleUpstream(id);
            reject(new Error(`initialize not answered within ${opts.initializeTimeoutMs} ms`));
          }, opts.initializeTimeoutMs || 30_000);
          timer.unref?.();
          pending.timer = timer;
        });
        await upstream.send({ ...init, id });
        const response = await answered;
        if (!isResult(response)) throw new Error('upstream refused initialize');
        const version = (response.result as { protocolVersion?: string }).protocolVersion;
        if (version) upstream.setProtocolVersion?.(version);
        if (this.clientInitialized)
          await upstream.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
        if (this.ctx.state === 'initializing') this.ctx.state = 'ready';
      } catch (error) {
        opts.log?.(`upstream "${opts.upstreamName}" restart failed`, error);
        this.ctx.state = 'upstream-down';
        // Requests queued behind the restart fail through their own onError (no upstream).
        this.ctx.upstream = undefined;
        throw error;
      }
    });
  }

  private forwardRequestUpstream(request: JSONRPCRequest): void {
    // Traced: the request is sent inside its span, so the upstream receives its traceparent.
    const trace = this.ctx.opts.tracer?.request(request);
    if (trace) trace.run(() => this.forwardRequest(request, trace));
    else this.forwardRequest(request, undefined);
  }

  private forwardRequest(request: JSONRPCRequest, trace: RelayRequestTrace | undefined): void {
    const { opts, requests, outbox } = this.ctx;
    const { upstreamId, pending } = requests.addUpstream(request);
    pending.trace = trace;
    this.lifecycle.armTimeout(upstreamId, pending);

    const forwarded: JSONRPCRequest = { ...request, id: upstreamId };
    outbox.toUpstream(forwarded, (error) => {
      // The upstream could not even accept the request (process gone, HTTP error, ...).
      if (!requests.upstream(upstreamId)) return;
      requests.settleUpstream(upstreamId);
      const known = opts.describeFailure?.(error);
      // The exception's text (addresses, paths, an upstream's response body) goes to the audit
      // trail, never to the client.
      const reason = known?.message ?? `Upstream "${opts.upstreamName}" could not take ${request.method}`;
      this.ctx.report(pending, 'failed', undefined, known?.message ?? `${reason}: ${errorMessage(error)}`);
      outbox.replyDownstreamError(request.id, known?.code ?? ErrorCode.InternalError, reason, known?.data);
      if (request.method === 'initialize') void this.lifecycle.shutdown('upstream failed to start');
    });
  }

  private forwardNotificationUpstream(notification: JSONRPCNotification): void {
    const { opts, requests, outbox } = this.ctx;
    if (notification.method === 'notifications/cancelled') {
      const downstreamId = (notification.params as { requestId?: RequestId } | undefined)?.requestId;
      const upstreamId = requests.upstreamIdOf(downstreamId);
      if (upstreamId === undefined) {
        // Unknown or already-finished request: the spec says to ignore such cancellations.
        outbox.drop('down->up', notification, 'cancel for unknown request');
        return;
      }
      const cancelled = requests.upstream(upstreamId);
      requests.settleUpstream(upstreamId);
      if (cancelled) this.ctx.report(cancelled, 'cancelled', undefined, 'cancelled by the client');
      outbox.toUpstream({ ...notification, params: { ...notification.params, requestId: upstreamId } });
      // A cancelled request gets no response (spec), so the SDK server transport would keep its
      // POST SSE stream open forever. Close it explicitly; the SDK client does not reconnect a
      // POST stream that had no priming event.
      try {
        this.ctx.downstream.closeSSEStream?.(downstreamId!);
      } catch (error) {
        opts.log?.('closeSSEStream failed', error);
      }
      return;
    }
    outbox.toUpstream(notification);
  }

  /** A downstream answer to an upstream-originated request (sampling, elicitation, roots, ping...). */
  private forwardResponseUpstream(response: JSONRPCMessage & { id?: RequestId | null }): void {
    const { opts, requests, outbox } = this.ctx;
    const pending = requests.takeDownstream(response.id);
    if (!pending) {
      outbox.drop('down->up', response, 'response to unknown request');
      return;
    }
    opts.onSettled?.({
      direction: 'upstream->client',
      method: pending.method,
      params: pending.params,
      latencyMs: Date.now() - pending.startedAt,
      requestBytes: pending.requestBytes,
      response: response as JSONRPCResultResponse | JSONRPCErrorResponse,
      outcome: 'answered',
    });
    outbox.toUpstream({ ...response, id: pending.upstreamId } as JSONRPCMessage);
  }
}
