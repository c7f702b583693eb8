import { useSyncExternalStore } from 'react';
import { io, type Socket } from 'socket.io-client';
import type {
  ApproveTool,
  ChatAck,
  ChatMessageView,
  ClientToServerEvents,
  SendMessage,
  ServerToClientEvents,
} from '@gateway/shared';

// The app's one socket.io connection (same origin, the session cookie authenticates it),
// created when a page first needs it. socket.io reconnects by itself after a network drop;
// rooms are not kept across a reconnect, so pages join their thread again on `connect`.

export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** `connected`; `connecting` (first time or after a drop); `refused`: the server turned it away. */
export type ConnectionState = 'connecting' | 'connected' | 'refused';

const ACK_TIMEOUT_MS = 15_000;

let socket: ChatSocket | undefined;
let state: ConnectionState = 'connecting';
let refusal: string | undefined;
const listeners = new Set<() => void>();
const setState = (next: ConnectionState, reason?: string) => {
  state = next;
  refusal = reason;
  listeners.forEach((l) => l());
};

/** The shared connection, opened on first use. */
export function chatSocket(): ChatSocket {
  if (!socket) {
    const s: ChatSocket = io({ withCredentials: true, transports: ['websocket', 'polling'] });
    s.on('connect', () => setState('connected'));
    s.on('disconnect', () => setState(s.active ? 'connecting' : 'refused', 'The connection was closed.'));
    // A refusal by the server (its middleware: no session) stops the retries; a network
    // error does not (`active` stays true).
    s.on('connect_error', (e) => setState(s.active ? 'connecting' : 'refused', e.message));
    socket = s;
  }
  return socket;
}

/** Tries again after a refusal (the user may have signed in again in another tab). */
export function reconnect(): void {
  const s = chatSocket();
  if (!s.connected) {
    setState('connecting');
    s.connect();
  }
}

function subscribe(listener: () => void) {
  chatSocket();
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The connection's state, re-rendering when it changes; `reason` says why it was refused. */
export function useConnection(): { state: ConnectionState; reason: string | undefined } {
  const current = useSyncExternalStore(subscribe, () => state);
  return { state: current, reason: current === 'refused' ? refusal : undefined };
}

/** A refused or unanswered socket request: the server's code (as in REST errors) and message. */
export class ChatError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ChatError';
    this.code = code;
  }
}

/**
 * Emits and waits for the acknowledgement: its payload, or a `ChatError` carrying the
 * server's code and message (a timeout or a missing connection becomes one too).
 */
function ask<T extends object>(
  send: (s: ChatSocket, done: (err: Error | null, r?: ChatAck<T>) => void) => void,
) {
  return new Promise<T>((resolve, reject) => {
    const s = chatSocket();
    if (!s.connected) {
      reject(
        new ChatError(
          'unavailable',
          'Not connected to the gateway. Wait for the connection to come back and try again.',
        ),
      );
      return;
    }
    send(s, (err, r) => {
      if (err || !r) {
        reject(new ChatError('timeout', 'The gateway did not answer in time. Try again.'));
      } else if (r.ok) {
        resolve(r);
      } else {
        reject(new ChatError(r.error.code, r.error.message));
      }
    });
  });
}

export const chat = {
  join: (threadId: string) =>
    ask<object>((s, done) => s.timeout(ACK_TIMEOUT_MS).emit('thread:join', { threadId }, done)),
  leave: (threadId: string) =>
    ask<object>((s, done) => s.timeout(ACK_TIMEOUT_MS).emit('thread:leave', { threadId }, done)),
  send: (body: SendMessage) =>
    ask<{ message: ChatMessageView }>((s, done) =>
      s.timeout(ACK_TIMEOUT_MS).emit('message:send', body, done),
    ),
  approve: (body: ApproveTool) =>
    ask<object>((s, done) => s.timeout(ACK_TIMEOUT_MS).emit('tool:approve', body, done)),
  cancel: (threadId: string) =>
    ask<object>((s, done) => s.timeout(ACK_TIMEOUT_MS).emit('run:cancel', { threadId }, done)),
};
