import { z } from 'zod';

// The chat workspace's contract: REST bodies and views, and the socket.io events between the
// web UI and the server. Users chat with an agent in threads; the agent calls tools through
// the gateway with the thread's credentials.

export const THREAD_TITLE_MAX = 200;
export const CHAT_MESSAGE_MAX = 32_000;

/** `POST /api/threads` body. */
export const createThreadSchema = z
  .object({
    title: z.string().trim().min(1).max(THREAD_TITLE_MAX).optional(),
  })
  .strict();
export type CreateThread = z.infer<typeof createThreadSchema>;

/** `PATCH /api/threads/{id}` body. */
export const updateThreadSchema = z
  .object({
    title: z.string().trim().min(1).max(THREAD_TITLE_MAX),
  })
  .strict();
export type UpdateThread = z.infer<typeof updateThreadSchema>;

/** `GET /api/admin/threads` query (admins and auditors: every user's threads). */
export const adminThreadsQuerySchema = z
  .object({
    userId: z.string().uuid().optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .strict();
export type AdminThreadsQuery = z.infer<typeof adminThreadsQuerySchema>;

export interface ThreadView {
  id: string;
  title: string;
  userId: string;
  /** The owner's display name (admin lists show whose thread it is). */
  userName: string;
  /** True while the agent is answering in this thread. */
  running: boolean;
  messageCount: number;
  createdAt: string;
  updatedAt: string;
}

export type ToolCallStatus = 'running' | 'awaiting_approval' | 'ok' | 'error' | 'denied';

/** One tool call the agent made, as the thread shows it. */
export interface ToolCallView {
  /** The model's tool call id. */
  id: string;
  /** The name the agent sees: `{server}__{tool}`. */
  name: string;
  server: string;
  tool: string;
  input: unknown;
  status: ToolCallStatus;
  /** The tool's answer as text (errors included); null until it finishes. */
  output: string | null;
  /** Whether the server marks this tool as sensitive (a person approves each call). */
  sensitive: boolean;
}

export type ChatRole = 'user' | 'assistant';

/**
 * One message of a thread. An assistant message is one step of the agent: its text and the
 * tool calls it made in that step (with their results).
 */
export interface ChatMessageView {
  id: string;
  threadId: string;
  role: ChatRole;
  text: string;
  toolCalls: ToolCallView[];
  /** Set when the agent's turn ended in an error (the model was unreachable, a limit was hit). */
  error: string | null;
  createdAt: string;
}

/** `GET /api/threads/{id}` answer. */
export interface ThreadDetailView extends ThreadView {
  messages: ChatMessageView[];
}

/** `GET /api/chat/status`: whether a model is configured, and which. */
export interface ChatStatusView {
  enabled: boolean;
  model: string | null;
}

// socket.io: the client emits these (each with an acknowledgement callback)...

export const joinThreadSchema = z.object({ threadId: z.string().uuid() }).strict();
export const sendMessageSchema = z
  .object({
    threadId: z.string().uuid(),
    text: z.string().trim().min(1).max(CHAT_MESSAGE_MAX),
  })
  .strict();
export const approveToolSchema = z
  .object({
    threadId: z.string().uuid(),
    callId: z.string().min(1).max(200),
    approve: z.boolean(),
  })
  .strict();
export const cancelRunSchema = z.object({ threadId: z.string().uuid() }).strict();
export type SendMessage = z.infer<typeof sendMessageSchema>;
export type ApproveTool = z.infer<typeof approveToolSchema>;

/** Every acknowledgement: ok, or an error with the same code and message as a REST error. */
export type ChatAck<T = object> =
  ({ ok: true } & T) | { ok: false; error: { code: string; message: string } };

export interface ClientToServerEvents {
  'thread:join': (body: { threadId: string }, ack: (r: ChatAck) => void) => void;
  'thread:leave': (body: { threadId: string }, ack: (r: ChatAck) => void) => void;
  'message:send': (body: SendMessage, ack: (r: ChatAck<{ message: ChatMessageView }>) => void) => void;
  'tool:approve': (body: ApproveTool, ack: (r: ChatAck) => void) => void;
  'run:cancel': (body: { threadId: string }, ack: (r: ChatAck) => void) => void;
}

// ...and the server emits these to the thread's room.

export interface ServerToClientEvents {
  /** A message was stored: the user's, or a finished step of the agent. */
  'message:new': (e: { message: ChatMessageView }) => void;
  /** Text of the agent's step in progress, as it streams. */
  'message:delta': (e: { threadId: string; text: string }) => void;
  /** A tool call started, waits for approval, or finished. */
  'tool:update': (e: { threadId: string; call: ToolCallView }) => void;
  /** The agent started or finished answering. */
  'run:state': (e: { threadId: string; running: boolean }) => void;
  /** The thread's title changed or it was deleted (in another tab, or by an admin). */
  'thread:update': (e: { thread: ThreadView | null; threadId: string }) => void;
}
