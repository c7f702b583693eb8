import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { isMessage, isRequest, isResponse } from './gateway.messages.ts';

/** Comment frames on an idle SSE stream, so proxies do not cut it (the SDK's default interval). */
const KEEP_ALIVE_MS = 15_000;
/** The most messages one POST may carry (the SDK server's limit). */
const MAX_BATCH = 100;

/** What one POST that carried requests is waiting to send: its requests' answers. */
interface Exchange {
  readonly res: ServerResponse;
  /** Requests of this POST not answered yet. */
  readonly open: Set<RequestId>;
  /**
   * `pending`: nothing written yet. A POST with one request is answered with
   * `application/json` when its response is the first message for it, the cheapest form for
   * both sides; anything sent before the response (progress, a log line, a sampling
   * request) turns it into an SSE stream, as does a batch.
   */
  mode: 'pending' | 'sse' | 'done';
  timer: NodeJS.Timeout | undefined;
}

export interface DownstreamHttpOptions {
  /** Called with the new session id when `initialize` arrives, before the relay sees it. */
  onSessionInitialized: (sessionId: string) => void;
  /** Called when the standalone GET stream opens (true) and closes (false). */
  onStandaloneStream?: (open: boolean) => void;
  /** Interval of SSE keep-alive comments; also how long a POST's answer is held back before its stream opens. */
  keepAliveMs?: number;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

const sseFrame = (message: JSONRPCMessage) => `event: message\ndata: ${JSON.stringify(message)}\n\n`;

const isJsonContentType = (ct: string | undefined) =>
  ct === 'application/json' || ct?.split(';', 1)[0]?.trim().toLowerCase() === 'application/json';

/**
 * The downstream side of one MCP session over Streamable HTTP (spec 2025-11-25 and the
 * versions the SDK supports), spoken on Node's own request and response objects.
 *
 * The SDK's `StreamableHTTPServerTransport` converts every Node request into a web-standard
 * `Request` and its `Response` back (through @hono/node-server), wraps each POST's answer
 * in a `ReadableStream`, and parses each message with zod: about a fifth of the gateway's
 * CPU per relayed message. This transport keeps the SDK's wire behaviour (status codes,
 * error bodies, headers, one standalone GET stream, keep-alive comments) and answers a
 * single request with `application/json` when nothing else precedes its response, which
 * the spec allows and every client must accept.
 *
 * The routes have already checked Host, Origin, authentication, the session id and the
 * body's JSON-RPC shape; this class checks what belongs to the transport: Accept,
 * Content-Type, the protocol version header, initialization.
 */
export class DownstreamHttpTransport implements Transport {
  sessionId: string | undefined;
  onmessage?: Transport['onmessage'];
  onclose?: Transport['onclose'];
  onerror?: Transport['onerror'];

  readonly #options: DownstreamHttpOptions;
  readonly #keepAliveMs: number;
  /** Which POST each open downstream request id belongs to. */
  readonly #exchanges = new Map<RequestId, Exchange>();
  #standalone: { res: ServerResponse; timer: NodeJS.Timeout } | undefined;
  #initialized = false;
  #closed = false;

  constructor(options: DownstreamHttpOptions) {
    this.#options = options;
    this.#keepAliveMs = options.keepAliveMs ?? KEEP_ALIVE_MS;
  }

  async start(): Promise<void> {}

  /** Handles one HTTP request of this session; `body` is the parsed POST body. */
  async handleRequest(req: IncomingMessage, res: ServerResponse, body?: unknown): Promise<void> {
    if (this.#closed) return rpcError(res, 404, -32001, 'Session not found');
    switch (req.method) {
      case 'POST':
        return this.#post(req, res, body);
      case 'GET':
        return this.#get(req, res);
      case 'DELETE':
        return this.#delete(req, res);
      case undefined:
      default:
        res.setHeader('allow', 'GET, POST, DELETE');
        return rpcError(res, 405, -32000, 'Method not allowed.');
    }
  }

  #post(req: IncomingMessage, res: ServerResponse, body: unknown): void {
    const accept = req.headers.accept;
    if (!accept?.includes('application/json') || !accept.includes('text/event-stream'))
      return rpcError(
        res,
        406,
        -32000,
        'Not Acceptable: Client must accept both application/json and text/event-stream',
      );
    if (!isJsonContentType(req.headers['content-type']))
      return rpcError(res, 415, -32000, 'Unsupported Media Type: Content-Type must be application/json');
    const messages: unknown[] = Array.isArray(body) ? body : [body];
    if (messages.length > MAX_BATCH)
      return rpcError(res, 400, -32600, `Invalid Request: Batch must not exceed ${MAX_BATCH} messages`);
    if (!messages.length || !messages.every(isMessage))
      return rpcError(res, 400, -32700, 'Parse error: Invalid JSON-RPC message');

    const initialize = messages.some((m) => isRequest(m) && m.method === 'initialize');
    if (initialize) {
      if (this.#initialized) return rpcError(res, 400, -32600, 'Invalid Request: Server already initialized');
      if (messages.length > 1)
        return rpcError(res, 400, -32600, 'Invalid Request: Only one initialization request is allowed');
      this.sessionId = randomUUID();
      this.#initialized = true;
      this.#options.onSessionInitialized(this.sessionId);
    } else if (!this.#checkSession(req, res)) return;

    const requests = (messages as JSONRPCMessage[]).filter(isRequest);
    if (!requests.length) {
      res.writeHead(202).end();
      for (const m of messages as JSONRPCMessage[]) this.onmessage?.(m);
      return;
    }
    const exchange: Exchange = {
      res,
      open: new Set(requests.map((r) => r.id)),
      mode: 'pending',
      timer: undefined,
    };
    for (const id of exchange.open) this.#exchanges.set(id, exchange);
    res.once('close', () => this.#endExchange(exchange));
    if (requests.length > 1) this.#openStream(exchange);
    // A request that takes long with nothing to say: open the stream, so keep-alives flow.
    else exchange.timer = setTimeout(() => this.#openStream(exchange), this.#keepAliveMs).unref();
    for (const m of messages as JSONRPCMessage[]) this.onmessage?.(m);
  }

  #get(req: IncomingMessage, res: ServerResponse): void {
    if (!req.headers.accept?.includes('text/event-stream'))
      return rpcError(res, 406, -32000, 'Not Acceptable: Client must accept text/event-stream');
    if (!this.#checkSession(req, res)) return;
    if (this.#standalone)
      return rpcError(res, 409, -32000, 'Conflict: Only one SSE stream is allowed per session');
    res.writeHead(200, { ...SSE_HEADERS, 'mcp-session-id': this.sessionId });
    res.flushHeaders();
    const timer = setInterval(() => res.write(': keepalive\n\n'), this.#keepAliveMs).unref();
    const stream = { res, timer };
    this.#standalone = stream;
    res.once('close', () => {
      clearInterval(timer);
      if (this.#standalone !== stream) return;
      this.#standalone = undefined;
      this.#options.onStandaloneStream?.(false);
    });
    this.#options.onStandaloneStream?.(true);
  }

  async #delete(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#checkSession(req, res)) return;
    res.writeHead(200).end();
    await this.close();
  }

  /** Session and protocol version headers of a request after `initialize`. */
  #checkSession(req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.#initialized) {
      rpcError(res, 400, -32000, 'Bad Request: Server not initialized');
      return false;
    }
    const id = req.headers['mcp-session-id'];
    if (!id) {
      rpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
      return false;
    }
    if (id !== this.sessionId) {
      rpcError(res, 404, -32001, 'Session not found');
      return false;
    }
    const version = req.headers['mcp-protocol-version'];
    if (typeof version === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      rpcError(
        res,
        400,
        -32000,
        `Bad Request: Unsupported protocol version: ${version} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`,
      );
      return false;
    }
    return true;
  }

  /**
   * Sends a message: a response on its request's POST, another message on the POST of the
   * request it relates to, the rest on the standalone GET stream (dropped when none is open;
   * the relay buffers what must wait for one). A message for a POST whose client went away
   * is dropped: a disconnect is not a cancellation (spec), the upstream's work goes on.
   */
  async send(message: JSONRPCMessage, options?: { relatedRequestId?: RequestId }): Promise<void> {
    const response = isResponse(message);
    const id = response ? (message.id ?? undefined) : options?.relatedRequestId;
    if (id === undefined) {
      if (response) throw new Error('Cannot send a response on a standalone SSE stream');
      this.#standalone?.res.write(sseFrame(message));
      return;
    }
    const exchange = this.#exchanges.get(id);
    if (!exchange || exchange.mode === 'done') return;
    if (response) {
      exchange.open.delete(id);
      this.#exchanges.delete(id);
      if (exchange.mode === 'pending') {
        clearTimeout(exchange.timer);
        exchange.mode = 'done';
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (this.sessionId) headers['mcp-session-id'] = this.sessionId;
        exchange.res.writeHead(200, headers).end(JSON.stringify(message));
        return;
      }
      exchange.res.write(sseFrame(message));
      if (!exchange.open.size) this.#endExchange(exchange);
      return;
    }
    if (exchange.mode === 'pending') this.#openStream(exchange);
    exchange.res.write(sseFrame(message));
  }

  /**
   * Ends the POST stream of a request that will get no response (the relay calls this when
   * the client cancelled it). The SDK client does not reconnect a stream without event ids.
   */
  closeSSEStream(requestId: RequestId): void {
    const exchange = this.#exchanges.get(requestId);
    if (!exchange) return;
    if (exchange.mode === 'pending') this.#openStream(exchange);
    this.#endExchange(exchange);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const exchange of new Set(this.#exchanges.values())) {
      if (exchange.mode === 'pending') this.#openStream(exchange);
      this.#endExchange(exchange);
    }
    if (this.#standalone) {
      clearInterval(this.#standalone.timer);
      this.#standalone.res.end();
      this.#standalone = undefined;
    }
    this.onclose?.();
  }

  #openStream(exchange: Exchange): void {
    if (exchange.mode !== 'pending') return;
    clearTimeout(exchange.timer);
    exchange.mode = 'sse';
    exchange.res.writeHead(200, {
      ...SSE_HEADERS,
      ...(this.sessionId ? { 'mcp-session-id': this.sessionId } : {}),
    });
    exchange.res.flushHeaders();
    exchange.timer = setInterval(() => exchange.res.write(': keepalive\n\n'), this.#keepAliveMs).unref();
  }

  #endExchange(exchange: Exchange): void {
    if (exchange.mode === 'done' && !exchange.open.size) return;
    clearTimeout(exchange.timer);
    clearInterval(exchange.timer);
    exchange.mode = 'done';
    for (const id of exchange.open) this.#exchanges.delete(id);
    exchange.open.clear();
    if (!exchange.res.writableEnded) exchange.res.end();
  }
}

/** A JSON-RPC error the transport answers itself (id null: it concerns the HTTP request). */
function rpcError(res: ServerResponse, status: number, code: number, message: string): void {
  res
    .writeHead(status, { 'content-type': 'application/json' })
    .end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}
