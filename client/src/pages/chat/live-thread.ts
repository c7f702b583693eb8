import { useEffect, useState } from 'react';
import type {
  ChatMessageView,
  ThreadDetailView,
  ThreadView,
  ToolCallStatus,
  ToolCallView,
} from '@gateway/shared';
import { useApi } from '../../lib/hooks.ts';
import { chat, chatSocket } from '../../lib/socket.ts';

/** What the socket told us since the thread loaded; merged over the REST snapshot when shown. */
interface Live {
  /** Messages stored since (from `message:new` and send acknowledgements). */
  messages: ChatMessageView[];
  /** The latest state of each tool call seen in `tool:update`, in arrival order. */
  calls: ToolCallView[];
  /** Streamed text of the agent's step in progress. */
  text: string;
  /** From `run:state`; undefined: as the snapshot says. */
  running: boolean | undefined;
  /** From `thread:update` or a rename; null: the thread was deleted. */
  thread: ThreadView | null | undefined;
}

const NOTHING_LIVE: Live = { messages: [], calls: [], text: '', running: undefined, thread: undefined };
const FINAL: ReadonlySet<ToolCallStatus> = new Set(['ok', 'error', 'denied']);

function upsert<T extends { id: string }>(list: T[], item: T): T[] {
  const i = list.findIndex((x) => x.id === item.id);
  return i < 0 ? [...list, item] : list.map((x, j) => (j === i ? item : x));
}

function addMessage(live: Live, message: ChatMessageView): Live {
  const stored = new Set(message.toolCalls.map((c) => c.id));
  return {
    ...live,
    messages: upsert(live.messages, message),
    // A finished step replaces the text streamed for it; its calls are now as it says.
    text: message.role === 'assistant' ? '' : live.text,
    calls: live.calls.filter((c) => !stored.has(c.id)),
  };
}

/** The snapshot's messages and the live ones, each once, oldest first. */
function mergeMessages(snapshot: ChatMessageView[], live: ChatMessageView[]): ChatMessageView[] {
  const byId = new Map<string, ChatMessageView>();
  for (const m of [...snapshot, ...live]) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) =>
    a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0,
  );
}

/**
 * One thread as it stands: its REST snapshot with what the socket said since merged over it.
 * Follows the thread's room while mounted; `onThreadsChanged` hears of changes the thread
 * list shows (a finished turn, a new title, a deletion).
 */
export function useLiveThread(id: string, onThreadsChanged: () => void) {
  const detail = useApi<ThreadDetailView>(`/api/threads/${id}`);
  const reload = detail.reload;
  const [live, setLive] = useState<Live>(NOTHING_LIVE);
  const [joinError, setJoinError] = useState<Error | undefined>();

  // Follow the thread's room: join now (and again after every reconnect, which drops rooms),
  // then re-read the thread so nothing said before or while joining is missed.
  useEffect(() => {
    const socket = chatSocket();
    const join = () =>
      chat.join(id).then(
        () => {
          setJoinError(undefined);
          reload();
        },
        (e: Error) => setJoinError(e),
      );
    const onConnect = () => {
      setLive((l) => ({ ...l, calls: [], text: '', running: undefined }));
      void join();
    };
    const onMessage = ({ message }: { message: ChatMessageView }) => {
      if (message.threadId === id) setLive((l) => addMessage(l, message));
    };
    const onDelta = (e: { threadId: string; text: string }) => {
      if (e.threadId === id) setLive((l) => ({ ...l, text: l.text + e.text }));
    };
    const onTool = (e: { threadId: string; call: ToolCallView }) => {
      if (e.threadId === id) setLive((l) => ({ ...l, calls: upsert(l.calls, e.call) }));
    };
    const onRun = (e: { threadId: string; running: boolean }) => {
      if (e.threadId !== id) return;
      setLive((l) => (e.running ? { ...l, running: true } : { ...l, running: false, text: '', calls: [] }));
      if (!e.running) {
        // What the turn left (a stopped step, an error) is stored: show it as stored.
        reload();
        onThreadsChanged();
      }
    };
    const onThread = (e: { thread: ThreadView | null; threadId: string }) => {
      if (e.threadId !== id) return;
      setLive((l) => ({ ...l, thread: e.thread }));
      onThreadsChanged();
    };
    socket.on('connect', onConnect);
    socket.on('message:new', onMessage);
    socket.on('message:delta', onDelta);
    socket.on('tool:update', onTool);
    socket.on('run:state', onRun);
    socket.on('thread:update', onThread);
    if (socket.connected) void join();
    return () => {
      socket.off('connect', onConnect);
      socket.off('message:new', onMessage);
      socket.off('message:delta', onDelta);
      socket.off('tool:update', onTool);
      socket.off('run:state', onRun);
      socket.off('thread:update', onThread);
      if (socket.connected) chat.leave(id).catch(() => undefined);
    };
  }, [id, reload, onThreadsChanged]);

  const messages = mergeMessages(detail.data?.messages ?? [], live.messages);
  const inMessages = new Set(messages.flatMap((m) => m.toolCalls.map((c) => c.id)));
  return {
    /** The REST snapshot: its data, its load error, and `reload`. */
    detail,
    /** The thread as last heard of: undefined while loading, null once deleted. */
    thread: live.thread === undefined ? detail.data : live.thread,
    messages,
    /** Text of the agent's step in progress. */
    streamingText: live.text,
    /** Calls of the step in progress, not yet stored with a message. */
    pendingCalls: live.calls.filter((c) => !inMessages.has(c.id)),
    /** Every tool call update heard since the last turn ended. */
    liveCalls: live.calls,
    /** A live update is newer than a stored call unless that call has finished. */
    latest: (c: ToolCallView): ToolCallView => {
      const update = live.calls.find((u) => u.id === c.id);
      return update && !FINAL.has(c.status) ? update : c;
    },
    running: live.running ?? detail.data?.running ?? false,
    /** Why following the room failed; undefined once it succeeds. */
    joinError,
    /** Shows a message the owner sent before the socket echoes it. */
    addMessage: (m: ChatMessageView) => setLive((l) => addMessage(l, m)),
    /** Shows a renamed thread's new title. */
    setThread: (t: ThreadView) => setLive((l) => ({ ...l, thread: t })),
  };
}
