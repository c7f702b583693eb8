import type { ClientToServerEvents, ServerToClientEvents } from '@gateway/shared';
import { io, type Socket } from 'socket.io-client';
import { waitFor } from './mcp.ts';

export type ChatClient = Socket<ServerToClientEvents, ClientToServerEvents>;

/** An event the chat socket received, with its name. */
export interface ReceivedEvent {
  name: keyof ServerToClientEvents;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests inspect event payloads
  body: any;
}

/**
 * A socket.io client of the chat signed in with an API key (`auth.token`), recording every
 * event it receives.
 */
export async function connectChat(
  baseUrl: string,
  key: string | undefined,
  options: { origin?: string } = {},
): Promise<{
  socket: ChatClient;
  events: ReceivedEvent[];
  next(match: (e: ReceivedEvent) => boolean, what: string): Promise<ReceivedEvent>;
}> {
  const socket: ChatClient = io(baseUrl, {
    auth: key ? { token: key } : {},
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    ...(options.origin ? { extraHeaders: { origin: options.origin } } : {}),
  });
  const events: ReceivedEvent[] = [];
  socket.onAny((name: keyof ServerToClientEvents, body: unknown) => events.push({ name, body }));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
  return {
    socket,
    events,
    next: (match, what) => waitFor(() => events.find(match), what, 15_000),
  };
}
