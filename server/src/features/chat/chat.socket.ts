import type { Server as HttpServer } from 'node:http';
import {
  approveToolSchema,
  cancelRunSchema,
  joinThreadSchema,
  sendMessageSchema,
  type ChatAck,
  type ClientToServerEvents,
  type ServerToClientEvents,
} from '@gateway/shared';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Request, RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { Server as IoServer, type Socket } from 'socket.io';
import type { ZodType } from 'zod';
import { AppError, notFound } from '../../platform/http/errors.ts';
import { parseOr400 } from '../../platform/http/validate.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { Principal } from '../../core/principal.ts';
import type { Authenticator } from '../auth/index.ts';
import type { ChatService } from './chat.service.ts';

type ChatSocket = Socket<ClientToServerEvents, ServerToClientEvents, ServerEvents, SocketData>;
interface SocketData {
  token?: string | undefined;
}
/** Between replicas (Redis adapter): an approval or a stop for a turn running elsewhere. */
interface ServerEvents {
  'chat:approve': (e: { principal: Principal; threadId: string; callId: string; approve: boolean }) => void;
  'chat:cancel': (e: { principal: Principal; threadId: string }) => void;
}

const room = (threadId: string) => `thread:${threadId}`;

export interface ChatSocketDeps {
  server: HttpServer;
  chat: ChatService;
  /** The web session middleware: a browser's socket is signed in with its session cookie. */
  session: RequestHandler;
  principalFromSession: (req: Request) => Promise<Principal | undefined>;
  /** API keys (and OAuth tokens) in `auth.token`, for programs. */
  authenticators: Authenticator[];
  /** Origins a browser may open the socket from (the gateway's own). */
  origins: () => string[];
  /**
   * Whether this deployment answers the Host header (PUBLIC_URL, loopback names,
   * ALLOWED_HOSTS). A page is also same-origin when its Origin names the Host it reached us
   * at, and that Host is one of these: `localhost` and `127.0.0.1` both work, while a
   * DNS-rebinding page (Host and Origin both its own name) is still refused by the Host.
   */
  allowsHost?: (host: string | undefined) => boolean;
  /** With Redis, rooms and approvals span replicas (channels under REDIS_PREFIX). */
  redis?: { client: Redis; prefix: string } | undefined;
  /** The per-user request limit, applied to each message sent (each starts a model turn). */
  limits?:
    | {
        checkUser(subject: {
          ip: string | undefined;
          principal: Principal;
          method: string;
          path: string;
        }): Promise<{ message: string; retryAfterSeconds: number } | undefined>;
      }
    | undefined;
  logger: Logger;
}

/**
 * The chat's socket.io endpoint (`/socket.io`): clients join a thread's room to follow it,
 * send messages, approve sensitive tool calls and stop turns. Each event is authorized anew
 * (the web session may have ended since the socket opened). With Redis, rooms span replicas.
 */
export function attachChatSocket(deps: ChatSocketDeps): { close(): Promise<void> } {
  const logger = deps.logger.child({ feature: 'chat-socket' });
  const sameOrigin = (origin: string, host: string | undefined) => {
    if (!host || !deps.allowsHost?.(host)) return false;
    try {
      return new URL(origin).host === host.toLowerCase();
    } catch {
      return false;
    }
  };
  const io = new IoServer<ClientToServerEvents, ServerToClientEvents, ServerEvents, SocketData>(deps.server, {
    serveClient: false,
    maxHttpBufferSize: 256 * 1024,
    // A page of another site must not open a socket with the user's cookie (cross-site
    // WebSocket hijacking): browsers always send Origin, so a foreign one is refused.
    allowRequest: (req, callback) => {
      const origin = req.headers.origin;
      callback(null, !origin || deps.origins().includes(origin) || sameOrigin(origin, req.headers.host));
    },
  });
  let pub: Redis | undefined;
  let sub: Redis | undefined;
  if (deps.redis) {
    pub = deps.redis.client.duplicate();
    sub = deps.redis.client.duplicate();
    io.adapter(createAdapter(pub, sub, { key: `${deps.redis.prefix}:socket.io` }));
  }
  io.engine.use(deps.session);

  const principalOf = async (socket: ChatSocket): Promise<Principal | undefined> => {
    const token = socket.data.token;
    if (token) {
      for (const a of deps.authenticators) {
        const result = await a.authenticate(token, '/socket.io');
        if (result && 'principal' in result) return result.principal;
        if (result) return undefined;
      }
      return undefined;
    }
    return deps.principalFromSession(socket.request as Request);
  };

  io.use((socket, next) => {
    const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
    socket.data.token = typeof token === 'string' && token ? token : undefined;
    principalOf(socket).then(
      (p) => (p ? next() : next(new Error('unauthenticated: sign in, or pass an API key as auth.token'))),
      (err: unknown) => {
        logger.error({ err }, 'socket authentication failed');
        next(new Error('internal error'));
      },
    );
  });

  /** Runs one event: validates, authorizes, acknowledges with the result or a safe error. */
  const handle =
    <B, R extends object>(
      socket: ChatSocket,
      schema: ZodType<B>,
      fn: (p: Principal, body: B) => Promise<R>,
    ) =>
    (raw: unknown, ack: unknown) => {
      const reply = typeof ack === 'function' ? (ack as (r: ChatAck<R>) => void) : () => {};
      void (async () => {
        try {
          const principal = await principalOf(socket);
          if (!principal) {
            reply({
              ok: false,
              error: { code: 'unauthenticated', message: 'your session has ended: sign in again' },
            });
            socket.disconnect(true);
            return;
          }
          const body = parseOr400(schema, raw, 'body');
          reply({ ok: true, ...(await fn(principal, body)) });
        } catch (err) {
          if (err instanceof AppError && err.expose) {
            reply({ ok: false, error: { code: err.code, message: err.message } });
          } else {
            logger.error({ err }, 'chat socket event failed');
            reply({ ok: false, error: { code: 'internal', message: 'internal error' } });
          }
        }
      })();
    };

  io.on('connection', (socket) => {
    socket.on(
      'thread:join',
      handle(socket, joinThreadSchema, async (p, { threadId }) => {
        await deps.chat.requireReadable(p, threadId);
        await socket.join(room(threadId));
        return {};
      }),
    );
    socket.on(
      'thread:leave',
      handle(socket, joinThreadSchema, async (_p, { threadId }) => {
        await socket.leave(room(threadId));
        return {};
      }),
    );
    socket.on(
      'message:send',
      handle(socket, sendMessageSchema, async (p, { threadId, text }) => {
        const refused = await deps.limits?.checkUser({
          ip: socket.handshake.address,
          principal: p,
          method: 'message:send',
          path: '/socket.io',
        });
        if (refused) throw new AppError('rate_limited', refused.message);
        const message = await deps.chat.send(p, threadId, text);
        return { message };
      }),
    );
    socket.on(
      'tool:approve',
      handle(socket, approveToolSchema, async (p, { threadId, callId, approve }) => {
        if (deps.chat.approve(p, threadId, callId, approve)) return {};
        // The turn may run on another replica; without Redis there is no other.
        if (!deps.redis) throw notFound('tool call waiting for approval');
        io.serverSideEmit('chat:approve', { principal: p, threadId, callId, approve });
        return {};
      }),
    );
    socket.on(
      'run:cancel',
      handle(socket, cancelRunSchema, async (p, { threadId }) => {
        if (deps.chat.cancel(p, threadId)) return {};
        if (!deps.redis) throw notFound('turn in progress');
        io.serverSideEmit('chat:cancel', { principal: p, threadId });
        return {};
      }),
    );
  });
  if (deps.redis) {
    io.on('chat:approve', (e) => {
      try {
        deps.chat.approve(e.principal, e.threadId, e.callId, e.approve);
      } catch {
        // Not this user's turn: the replica that received it already refused nothing; ignore.
      }
    });
    io.on('chat:cancel', (e) => {
      try {
        deps.chat.cancel(e.principal, e.threadId);
      } catch {
        // As above.
      }
    });
  }

  deps.chat.setEvents({
    message: (threadId, message) => io.to(room(threadId)).emit('message:new', { message }),
    delta: (threadId, text) => io.to(room(threadId)).emit('message:delta', { threadId, text }),
    toolCall: (threadId, call) => io.to(room(threadId)).emit('tool:update', { threadId, call }),
    runState: (threadId, running) => io.to(room(threadId)).emit('run:state', { threadId, running }),
    thread: (threadId, thread) => io.to(room(threadId)).emit('thread:update', { threadId, thread }),
  });

  return {
    async close() {
      // Not io.close(): that would also close the HTTP server, which shuts down on its own terms.
      io.local.disconnectSockets(true);
      io.engine.close();
      await Promise.allSettled([pub?.quit(), sub?.quit()]);
    },
  };
}
