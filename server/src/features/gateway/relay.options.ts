import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type {
  JSONRPCErrorResponse,
  JSONRPCMessage,
  JSONRPCNotification,
  JSONRPCRequest,
  JSONRPCResultResponse,
  RequestId,
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
  /** Spans for bringing the upstream up and for each forwarded request (tracing); unset: none. */
  tracer?: RelayTracer | undefined;
}

/** How a relay reports its work to tracing (see gateway.tracing.ts). */
export interface RelayTracer {
  /** Wraps bringing an upstream up (connecting and starting its transport). */
  connect<T>(fn: () => Promise<T>): Promise<T>;
  /** Called as a request is forwarded upstream; undefined when it is not traced. */
  request(request: JSONRPCRequest): RelayRequestTrace | undefined;
}

/** One forwarded request's trace. */
export interface RelayRequestTrace {
  /** Runs the sending in the request's span, so the upstream receives its `traceparent`. */
  run(fn: () => void): void;
  /** The request ended: `report` (onSettled) runs inside its span, which then ends. */
  settled(event: SettledRequest, report: () => void): void;
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
