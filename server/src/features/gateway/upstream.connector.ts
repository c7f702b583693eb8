import { createHash } from 'node:crypto';
import { UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../../platform/logging/logger.ts';
import { propagatingFetch } from '../../platform/telemetry/tracing.ts';
import type { ServerRecord } from '../registry/index.ts';
import type { UpstreamTransport } from './mcp.relay.ts';

/** Environment variables a stdio server inherits from the gateway (nothing secret). */
const INHERITED_ENV = [
  'PATH',
  'HOME',
  'LOGNAME',
  'SHELL',
  'TERM',
  'USER',
  'LANG',
  'TMPDIR',
  'SYSTEMROOT',
  'NODE_EXTRA_CA_CERTS',
];

/** Who an upstream connection is for: its pool key and credential values. */
export interface UpstreamIdentity {
  readonly userId: string;
  readonly threadId?: string | undefined;
  /** Values from the credentials vault: env (stdio) or headers (remote). */
  readonly values: Record<string, string>;
}

/**
 * A transport whose process or connection was started ahead of time. `start()` is a no-op
 * (the SDK transports throw when started twice); everything else is delegated.
 */
class PrestartedTransport implements UpstreamTransport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  readonly #inner: Transport;
  readonly #exited: () => boolean;

  constructor(inner: Transport, exited: () => boolean) {
    this.#inner = inner;
    this.#exited = exited;
    inner.onclose = () => this.onclose?.();
    inner.onerror = (e) => this.onerror?.(e);
    inner.onmessage = (m) => this.onmessage?.(m);
  }
  async start(): Promise<void> {
    if (this.#exited()) throw new Error('pre-started upstream process has exited');
  }
  send(message: JSONRPCMessage): Promise<void> {
    return this.#inner.send(message);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

interface WarmProcess {
  transport: StdioClientTransport;
  exited: boolean;
  timer: NodeJS.Timeout;
}

/**
 * Starts stdio servers, keeping a few started processes per (server, user[, thread],
 * credentials) so a new session does not wait for a cold start. A warm process is never
 * shared: each is handed to exactly one session, and refilled in the background. Unused
 * ones are reaped after `idleMs`. Keys include a hash of the environment, so a changed
 * credential never hands out a process started with the old one.
 */
export class StdioPool {
  readonly #size: number;
  readonly #idleMs: number;
  readonly #logger: Logger;
  readonly #pools = new Map<string, WarmProcess[]>();
  #closed = false;

  constructor(options: { size: number; idleMs: number; logger: Logger }) {
    this.#size = options.size;
    this.#idleMs = options.idleMs;
    this.#logger = options.logger;
  }

  get warmCount(): number {
    let n = 0;
    for (const list of this.#pools.values()) n += list.length;
    return n;
  }

  static spawnParams(server: ServerRecord, identity: UpstreamIdentity) {
    const t = server.resolvedTransport;
    if (t.type !== 'stdio') throw new Error('not a stdio server');
    const env: Record<string, string> = {};
    // eslint-disable-next-line no-restricted-properties -- the child's inherited basics, not configuration
    for (const k of INHERITED_ENV) if (process.env[k]) env[k] = process.env[k]!;
    Object.assign(env, t.env, identity.values);
    return {
      command: t.command,
      args: t.args,
      env,
      ...(t.cwd ? { cwd: t.cwd } : {}),
      stderr: 'pipe' as const,
    };
  }

  #key(server: ServerRecord, identity: UpstreamIdentity, params: ReturnType<typeof StdioPool.spawnParams>) {
    const h = createHash('sha256')
      .update(JSON.stringify([server.id, server.updatedAt.toISOString(), params]))
      .digest('hex')
      .slice(0, 16);
    return `${server.id}|${identity.userId}|${identity.threadId ?? ''}|${h}`;
  }

  #spawn(params: ReturnType<typeof StdioPool.spawnParams>, slug: string): WarmProcess {
    const transport = new StdioClientTransport(params);
    const warm: WarmProcess = { transport, exited: false, timer: undefined as unknown as NodeJS.Timeout };
    transport.onclose = () => {
      warm.exited = true;
    };
    transport.onerror = (err) =>
      this.#logger.debug({ server: slug, err: err.message }, 'warm upstream error');
    transport.start().then(
      () => transport.stderr?.on('data', () => {}),
      (err: unknown) => {
        warm.exited = true;
        this.#logger.warn({ server: slug, err: (err as Error).message }, 'could not pre-start upstream');
      },
    );
    return warm;
  }

  #refill(key: string, params: ReturnType<typeof StdioPool.spawnParams>, slug: string) {
    if (this.#closed || this.#size === 0) return;
    const list = this.#pools.get(key) ?? [];
    this.#pools.set(key, list);
    while (list.length < this.#size) {
      const warm = this.#spawn(params, slug);
      warm.timer = setTimeout(() => {
        const i = list.indexOf(warm);
        if (i >= 0) list.splice(i, 1);
        if (!list.length) this.#pools.delete(key);
        void warm.transport.close().catch(() => {});
      }, this.#idleMs);
      warm.timer.unref();
      list.push(warm);
    }
  }

  /** A transport for one new session: a warm process when one is ready, a new one otherwise. */
  take(server: ServerRecord, identity: UpstreamIdentity): UpstreamTransport {
    const params = StdioPool.spawnParams(server, identity);
    const key = this.#key(server, identity, params);
    const list = this.#pools.get(key);
    let transport: UpstreamTransport | undefined;
    while (list?.length) {
      const warm = list.shift()!;
      clearTimeout(warm.timer);
      if (!warm.exited) {
        transport = new PrestartedTransport(warm.transport, () => warm.exited);
        break;
      }
    }
    transport ??= new StdioClientTransport(params);
    // Refill after this session took one: the next session (e.g. a client reconnecting) starts warm.
    setImmediate(() => this.#refill(key, params, server.slug));
    return transport;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#pools.values()].flat();
    this.#pools.clear();
    await Promise.allSettled(
      all.map((w) => {
        clearTimeout(w.timer);
        return w.transport.close();
      }),
    );
  }
}

/** OAuth for a remote upstream: the SDK's provider, and what to throw when the user must authorize. */
export interface UpstreamAuth {
  readonly provider: OAuthClientProvider;
  /** Replaces the SDK's UnauthorizedError (it says nothing about what the user should do). */
  readonly authorizationRequired: () => Error;
  /**
   * Wraps the transport's fetch, which the SDK also uses for its own token requests (the
   * refresh after a 401): the provider puts those under the refresh lock.
   */
  readonly wrapFetch?: (fetch: typeof globalThis.fetch) => typeof globalThis.fetch;
}

/**
 * A remote upstream over Streamable HTTP or SSE, with the user's headers, through the
 * SSRF-guarded fetch. The client's own Authorization header never gets here: the gateway
 * builds upstream requests from scratch. The SDK HTTP client transport never reports a dead
 * server by itself, so a network-level failure closes it (which fails pending requests).
 *
 * With `upstreamAuth`, the SDK transport does OAuth itself: it sends the user's access
 * token, and on a 401 refreshes it or starts an authorization (then throws its
 * UnauthorizedError, which becomes `authorizationRequired()`).
 */
export function remoteUpstream(
  server: ServerRecord,
  identity: UpstreamIdentity,
  guardedFetch: typeof fetch,
  upstreamAuth?: UpstreamAuth,
): UpstreamTransport {
  const t = server.resolvedTransport;
  if (t.type === 'stdio') throw new Error('not a remote server');
  const headers: Record<string, string> = { ...t.headers, ...identity.values };
  let transport: StreamableHTTPClientTransport | SSEClientTransport;
  let dead = false;
  const livenessFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    try {
      return await guardedFetch(input, init);
    } catch (error) {
      const aborted = init?.signal?.aborted || (error as Error)?.name === 'AbortError';
      if (!aborted && !dead) {
        dead = true;
        queueMicrotask(() => void transport.close());
      }
      throw error;
    }
  };
  const url = new URL(t.url);
  const authProvider = upstreamAuth?.provider;
  // Each request carries the active trace's traceparent, so the upstream continues the trace.
  const tracedFetch = propagatingFetch(livenessFetch as typeof fetch);
  const transportFetch = upstreamAuth?.wrapFetch ? upstreamAuth.wrapFetch(tracedFetch) : tracedFetch;
  if (t.type === 'sse') {
    transport = new SSEClientTransport(url, {
      fetch: transportFetch,
      requestInit: { headers },
      ...(authProvider ? { authProvider } : {}),
    });
  } else {
    transport = new StreamableHTTPClientTransport(url, {
      fetch: transportFetch,
      requestInit: { headers, redirect: 'manual' },
      ...(authProvider ? { authProvider } : {}),
      reconnectionOptions: {
        initialReconnectionDelay: 250,
        maxReconnectionDelay: 30_000,
        reconnectionDelayGrowFactor: 1.5,
        maxRetries: 2,
      },
    });
  }
  if (upstreamAuth) {
    // Wrapped on the instance (not a delegating class) so everything else the relay and the
    // SDK Client use (sessionId, setProtocolVersion, terminateSession) stays the SDK's own.
    const translate = (error: unknown) =>
      error instanceof UnauthorizedError ? upstreamAuth.authorizationRequired() : error;
    const send = transport.send.bind(transport) as (
      message: JSONRPCMessage,
      options?: Parameters<StreamableHTTPClientTransport['send']>[1],
    ) => Promise<void>;
    const start = transport.start.bind(transport);
    transport.send = (
      message: JSONRPCMessage,
      options?: Parameters<StreamableHTTPClientTransport['send']>[1],
    ) => send(message, options).catch((error: unknown) => Promise.reject(translate(error)));
    transport.start = () => start().catch((error: unknown) => Promise.reject(translate(error)));
  }
  return transport;
}
