import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import {
  CHAT_MESSAGE_MAX,
  THREAD_TITLE_MAX,
  type ChatMessageView,
  type ChatStatusView,
  type CredentialView,
  type ServerView,
  type ThreadDetailView,
  type ThreadView,
  type ToolCallStatus,
  type ToolCallView,
} from '@gateway/shared';
import { CredentialsForm, OAuthConnect } from '../components/credentials.tsx';
import {
  Badge,
  ConfirmButton,
  EmptyState,
  ErrorMessage,
  Loading,
  PageHeader,
  TextField,
  type Tone,
} from '../components/ui.tsx';
import { api, ApiError } from '../lib/api.ts';
import { formatRelative, formatTime } from '../lib/format.ts';
import { useAction, useApi, useTitle } from '../lib/hooks.ts';
import { useMe } from '../lib/me.ts';
import { Link, navigate } from '../lib/router.tsx';
import { chat, chatSocket, reconnect, useConnection, type ConnectionState } from '../lib/socket.ts';

const NO_MODEL =
  'No language model is configured: an administrator sets OPENAI_API_KEY (and OPENAI_BASE_URL for a self-hosted model).';

const CALL_STATUS: Record<ToolCallStatus, { label: string; tone: Tone }> = {
  running: { label: 'running', tone: 'info' },
  awaiting_approval: { label: 'awaiting approval', tone: 'warn' },
  ok: { label: 'ok', tone: 'ok' },
  error: { label: 'error', tone: 'bad' },
  denied: { label: 'denied', tone: 'warn' },
};
const FINAL: ReadonlySet<ToolCallStatus> = new Set(['ok', 'error', 'denied']);

/** Whether a model answers: true, false, or undefined while the status loads. */
type ModelState = { enabled: boolean | undefined; model: string | null };

/** Chat: the user's threads on the left, the open thread on the right. */
export function ChatPage({ threadId }: { threadId?: string }) {
  const status = useApi<ChatStatusView>('/api/chat/status');
  const threads = useApi<{ threads: ThreadView[] }>('/api/threads');
  // A status that fails to load does not hide the composer: sending then says what is wrong.
  const model: ModelState = {
    enabled: status.data ? status.data.enabled : status.error ? true : undefined,
    model: status.data?.model ?? null,
  };
  return (
    <div className="chat-layout">
      <ThreadList
        threads={threads.data?.threads}
        error={threads.error}
        currentId={threadId}
        onChanged={threads.reload}
      />
      <div className="chat-main">
        {threadId ? (
          <Conversation key={threadId} id={threadId} model={model} onThreadsChanged={threads.reload} />
        ) : (
          <NoThread model={model} />
        )}
      </div>
    </div>
  );
}

function ThreadList(props: {
  threads: ThreadView[] | undefined;
  error: Error | undefined;
  currentId: string | undefined;
  onChanged: () => void;
}) {
  const create = useAction(async () => {
    const thread = await api.post<ThreadView>('/api/threads', {});
    props.onChanged();
    navigate(`/chat/${thread.id}`);
  });
  return (
    <nav className="thread-list panel" aria-labelledby="threads-title">
      <div className="thread-list-header">
        <h2 id="threads-title">Threads</h2>
        <button
          type="button"
          className="button-primary button-small"
          disabled={create.pending}
          onClick={() => void create.run()}
        >
          New thread
        </button>
      </div>
      <ErrorMessage error={create.error} title="The thread could not be created" />
      <ErrorMessage error={props.error} title="Your threads could not be loaded" />
      {!props.threads && !props.error && <Loading label="Loading threads…" />}
      {props.threads?.length === 0 && <p className="muted">No threads yet.</p>}
      {props.threads && props.threads.length > 0 && (
        <ul className="thread-links">
          {props.threads.map((t) => (
            <li key={t.id}>
              <Link
                to={`/chat/${t.id}`}
                className="thread-link"
                aria-current={t.id === props.currentId ? 'page' : undefined}
                data-thread={t.id}
              >
                <span className="thread-title">{t.title}</span>
                <span className="thread-meta">
                  <time dateTime={t.updatedAt} title={formatTime(t.updatedAt)}>
                    {formatRelative(t.updatedAt)}
                  </time>
                  {t.running && ' · answering'}
                </span>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </nav>
  );
}

function NoThread({ model }: { model: ModelState }) {
  useTitle('Chat');
  return (
    <>
      <PageHeader title="Chat" />
      {model.enabled === false && (
        <p className="alert alert-warn" role="note">
          {NO_MODEL}
        </p>
      )}
      <EmptyState title="Start a conversation">
        Open a thread from the list, or start one with “New thread”. The agent answers with the tools of the
        servers you can use, and asks before it runs a tool marked sensitive.
      </EmptyState>
    </>
  );
}

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

function Conversation(props: { id: string; model: ModelState; onThreadsChanged: () => void }) {
  const { id, onThreadsChanged } = props;
  const me = useMe();
  const detail = useApi<ThreadDetailView>(`/api/threads/${id}`);
  const reload = detail.reload;
  const [live, setLive] = useState<Live>(NOTHING_LIVE);
  const [joinError, setJoinError] = useState<Error | undefined>();
  const [credentialsOpen, setCredentialsOpen] = useState(false);
  const credentialsId = useId();
  const connection = useConnection();

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
  useFollowBottom(
    detail.data !== undefined,
    `${messages.length}:${live.text.length}:${live.calls.map((c) => c.status).join()}`,
  );
  const thread = live.thread === undefined ? detail.data : live.thread;
  useTitle(thread ? thread.title : 'Chat');

  if (live.thread === null) {
    return (
      <>
        <PageHeader title="Thread deleted" />
        <EmptyState title="This thread was deleted">
          Open another one from the list, or start a new thread.
        </EmptyState>
      </>
    );
  }
  if (!detail.data || !thread) {
    return (
      <>
        <PageHeader title="Chat" />
        {detail.error ? (
          <ErrorMessage
            error={detail.error}
            title={
              detail.error instanceof ApiError && detail.error.status === 404
                ? 'There is no such thread'
                : 'The thread could not be loaded'
            }
          />
        ) : (
          <Loading label="Loading the thread…" />
        )}
      </>
    );
  }

  const readOnly = detail.data.userId !== me.id;
  const running = live.running ?? detail.data.running;
  const inMessages = new Set(messages.flatMap((m) => m.toolCalls.map((c) => c.id)));
  const pendingCalls = live.calls.filter((c) => !inMessages.has(c.id));
  // A live update is newer than a stored call unless that call has finished.
  const latest = (c: ToolCallView) => {
    const update = live.calls.find((u) => u.id === c.id);
    return update && !FINAL.has(c.status) ? update : c;
  };
  const owner = readOnly ? detail.data.userName : 'You';

  return (
    <>
      <PageHeader title={thread.title}>
        {!readOnly && (
          <button
            type="button"
            className="button-small"
            aria-expanded={credentialsOpen}
            aria-controls={credentialsOpen ? credentialsId : undefined}
            onClick={() => setCredentialsOpen((o) => !o)}
          >
            Thread credentials
          </button>
        )}
        {!readOnly && (
          <ThreadActions
            thread={thread}
            onRenamed={(t) => {
              setLive((l) => ({ ...l, thread: t }));
              onThreadsChanged();
            }}
            onDeleted={() => {
              onThreadsChanged();
              navigate('/chat');
            }}
          />
        )}
      </PageHeader>
      {readOnly && (
        <p className="alert alert-warn" role="note">
          {`You are viewing ${detail.data.userName}'s thread (read-only).`}
        </p>
      )}
      {!readOnly && credentialsOpen && <ThreadCredentials id={credentialsId} threadId={id} />}
      <ConnectionNotice state={connection.state} reason={connection.reason} />
      {!readOnly && joinError && connection.state === 'connected' && (
        <p className="alert alert-warn" role="alert">
          Live updates for this thread are off: {joinError.message}{' '}
          <button type="button" className="link-button" onClick={reload}>
            Reload the thread
          </button>
        </p>
      )}
      {detail.error && <ErrorMessage error={detail.error} title="The thread could not be refreshed" />}

      <div className="chat-log" role="log" aria-label="Messages" aria-busy={running}>
        {messages.length === 0 && !live.text && pendingCalls.length === 0 && (
          <p className="muted">No messages yet.</p>
        )}
        {messages.map((m) => (
          <Message
            key={m.id}
            message={m}
            author={m.role === 'user' ? owner : 'Agent'}
            calls={m.toolCalls.map(latest)}
            canApprove={!readOnly}
          />
        ))}
        {(live.text || pendingCalls.length > 0) && (
          <article className="message message-assistant" data-role="assistant" data-streaming="true">
            <header className="message-meta">
              <span className="message-author">Agent</span>
            </header>
            {live.text && <div className="message-text">{live.text}</div>}
            {pendingCalls.map((c) => (
              <ToolCall key={c.id} threadId={id} call={c} canApprove={!readOnly} />
            ))}
          </article>
        )}
      </div>

      <RunBar threadId={id} running={running} canStop={!readOnly} />
      {!readOnly &&
        (props.model.enabled === false ? (
          <p className="alert alert-warn" role="note">
            {NO_MODEL}
          </p>
        ) : props.model.enabled ? (
          <Composer
            threadId={id}
            disabled={running}
            model={props.model.model}
            onSent={(m) => setLive((l) => addMessage(l, m))}
          />
        ) : null)}
    </>
  );
}

/**
 * The thread's own credentials, server by server: the agent uses them in this thread instead
 * of the user's own (on a thread-isolated server, only they count).
 */
function ThreadCredentials({ id, threadId }: { id: string; threadId: string }) {
  const servers = useApi<{ servers: ServerView[] }>('/api/servers');
  const credentials = useApi<{ credentials: CredentialView[] }>('/api/credentials');
  const list = (servers.data?.servers ?? []).filter((s) => s.credentialFields.length > 0 || s.oauth);
  const stored = credentials.data?.credentials ?? [];
  const find = (slug: string, kind: CredentialView['kind'], thread: string | null) =>
    stored.find((c) => c.serverSlug === slug && c.kind === kind && c.threadId === thread);
  const loaded = servers.data !== undefined && credentials.data !== undefined;
  return (
    <section id={id} className="panel thread-credentials" aria-label="Thread credentials">
      <p className="muted small">
        Values stored here are for this thread only: the agent uses them here instead of your own (from{' '}
        <Link to="/servers">Servers</Link>), and they are deleted with the thread.
      </p>
      <ErrorMessage error={servers.error} title="The servers could not be loaded" />
      <ErrorMessage error={credentials.error} title="Your credentials could not be loaded" />
      {!loaded && !servers.error && !credentials.error && <Loading label="Loading credentials…" />}
      {loaded && list.length === 0 && (
        <p className="muted">None of the servers you can use asks for credentials.</p>
      )}
      {loaded && list.length > 0 && (
        <ul className="thread-credential-list">
          {list.map((s) => (
            <li key={s.id}>
              <section aria-labelledby={`${id}-${s.slug}`} data-thread-credentials={s.slug}>
                <h3 id={`${id}-${s.slug}`}>
                  {s.name} <code className="slug">{s.slug}</code>
                  {s.threadIsolated && (
                    <>
                      {' '}
                      <Badge tone="info" title="In chat, only the thread's own credentials count">
                        thread-isolated
                      </Badge>
                    </>
                  )}
                  {!s.enabled && (
                    <>
                      {' '}
                      <Badge tone="warn">disabled</Badge>
                    </>
                  )}
                </h3>
                {s.oauth && (
                  <OAuthConnect
                    server={s}
                    threadId={threadId}
                    credential={find(s.slug, 'oauth', threadId)}
                    userCredential={find(s.slug, 'oauth', null)}
                    onChanged={credentials.reload}
                  />
                )}
                {s.credentialFields.length > 0 && (
                  <CredentialsForm
                    server={s}
                    threadId={threadId}
                    credential={find(s.slug, 'values', threadId)}
                    userCredential={find(s.slug, 'values', null)}
                    onChanged={credentials.reload}
                  />
                )}
              </section>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/**
 * Keeps the page scrolled to the newest message: once when the thread has loaded, then on
 * each change while the reader is at the bottom (not after they scrolled up to read).
 */
function useFollowBottom(loaded: boolean, content: string) {
  const follow = useRef(true);
  useEffect(() => {
    const onScroll = () => {
      follow.current = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 120;
    };
    window.addEventListener('scroll', onScroll, { passive: true });
    return () => window.removeEventListener('scroll', onScroll);
  }, []);
  useEffect(() => {
    if (loaded) window.scrollTo({ top: document.documentElement.scrollHeight });
  }, [loaded]);
  useEffect(() => {
    if (follow.current) window.scrollTo({ top: document.documentElement.scrollHeight });
  }, [content]);
}

function ConnectionNotice({ state, reason }: { state: ConnectionState; reason: string | undefined }) {
  if (state === 'connected') return null;
  if (state === 'connecting') {
    return (
      <p className="muted small" role="status">
        Connecting to live updates…
      </p>
    );
  }
  return (
    <p className="alert alert-warn" role="alert">
      Live updates are off{reason ? `: ${reason}` : ''}.{' '}
      <button type="button" className="link-button" onClick={reconnect}>
        Reconnect
      </button>
    </p>
  );
}

function ThreadActions(props: {
  thread: ThreadView;
  onRenamed: (t: ThreadView) => void;
  onDeleted: () => void;
}) {
  const [renaming, setRenaming] = useState(false);
  if (renaming) {
    return (
      <RenameForm
        thread={props.thread}
        onDone={(t) => {
          setRenaming(false);
          if (t) props.onRenamed(t);
        }}
      />
    );
  }
  return (
    <>
      <button type="button" className="button-small" onClick={() => setRenaming(true)}>
        Rename
      </button>
      <ConfirmButton
        label="Delete thread"
        title={`Delete the thread “${props.thread.title}”?`}
        message={
          <p>
            Its messages are deleted, and so are the credentials stored for this thread only. Your own
            credentials for the servers stay.
          </p>
        }
        confirmLabel="Delete thread"
        onConfirm={async () => {
          await api.delete(`/api/threads/${props.thread.id}`);
          props.onDeleted();
        }}
      />
    </>
  );
}

function RenameForm({ thread, onDone }: { thread: ThreadView; onDone: (t?: ThreadView) => void }) {
  const [title, setTitle] = useState(thread.title);
  const save = useAction((value: string) =>
    api.patch<ThreadView>(`/api/threads/${thread.id}`, { title: value }),
  );
  const error = save.error instanceof ApiError ? save.error : undefined;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const saved = await save.run(title.trim());
    if (saved) onDone(saved);
  };
  return (
    <form className="rename-form" aria-label="Rename thread" onSubmit={(e) => void submit(e)} noValidate>
      <TextField
        label="Thread title"
        value={title}
        onValue={setTitle}
        maxLength={THREAD_TITLE_MAX}
        required
        autoFocus
        error={error?.issueAt('body.title')}
        onKeyDown={(e) => {
          if (e.key === 'Escape') {
            e.preventDefault();
            onDone();
          }
        }}
      />
      {save.error && !error?.issueAt('body.title') && <ErrorMessage error={save.error} />}
      <div className="actions">
        <button type="submit" className="button-primary button-small" disabled={save.pending}>
          {save.pending ? 'Saving…' : 'Save'}
        </button>
        <button type="button" className="button-small" onClick={() => onDone()}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function Message(props: {
  message: ChatMessageView;
  author: string;
  calls: ToolCallView[];
  canApprove: boolean;
}) {
  const m = props.message;
  return (
    <article className={`message message-${m.role}`} data-role={m.role} data-message-id={m.id}>
      <header className="message-meta">
        <span className="message-author">{props.author}</span>
        <time dateTime={m.createdAt}>{formatTime(m.createdAt)}</time>
      </header>
      {m.text && <div className="message-text">{m.text}</div>}
      {props.calls.map((c) => (
        <ToolCall key={c.id} threadId={m.threadId} call={c} canApprove={props.canApprove} />
      ))}
      {m.error && <p className="message-error">The agent stopped: {m.error}</p>}
    </article>
  );
}

function ToolCall({
  threadId,
  call,
  canApprove,
}: {
  threadId: string;
  call: ToolCallView;
  canApprove: boolean;
}) {
  const status = CALL_STATUS[call.status];
  return (
    <div
      className="tool-call"
      role="group"
      aria-label={`Tool call ${call.server} / ${call.tool}`}
      data-tool-call={call.id}
      data-status={call.status}
    >
      <div className="tool-call-header">
        <span className="tool-call-name">
          <code>{call.server}</code> / <code>{call.tool}</code>
        </span>
        <Badge tone={status.tone}>{status.label}</Badge>
        {call.sensitive && (
          <Badge tone="neutral" title="A person approves each call of this tool">
            sensitive
          </Badge>
        )}
      </div>
      <details>
        <summary>Input</summary>
        <pre className="code">{JSON.stringify(call.input, null, 2) ?? 'none'}</pre>
      </details>
      {call.output !== null && (
        <details>
          <summary>Output</summary>
          <pre className="code">{call.output || '(empty)'}</pre>
        </details>
      )}
      {call.status === 'awaiting_approval' &&
        (canApprove ? (
          <Approval threadId={threadId} callId={call.id} />
        ) : (
          <p className="muted small">Waiting for the thread owner&apos;s approval.</p>
        ))}
    </div>
  );
}

function Approval({ threadId, callId }: { threadId: string; callId: string }) {
  const decide = useAction((approve: boolean) => chat.approve({ threadId, callId, approve }));
  return (
    <div className="approval">
      <p>The agent wants to run this tool. Check its input, then allow or refuse this call.</p>
      <ErrorMessage error={decide.error} />
      <div className="actions">
        <button
          type="button"
          className="button-primary button-small"
          disabled={decide.pending}
          onClick={() => void decide.run(true)}
        >
          Approve
        </button>
        <button
          type="button"
          className="button-small button-danger"
          disabled={decide.pending}
          onClick={() => void decide.run(false)}
        >
          Deny
        </button>
      </div>
    </div>
  );
}

function RunBar({ threadId, running, canStop }: { threadId: string; running: boolean; canStop: boolean }) {
  const cancel = useAction(() => chat.cancel(threadId));
  return (
    <div className="run-bar">
      <p className="run-status" role="status">
        {running ? 'The agent is answering…' : ''}
      </p>
      {running && canStop && (
        <button
          type="button"
          className="button-small button-danger"
          disabled={cancel.pending}
          onClick={() => void cancel.run()}
        >
          Stop
        </button>
      )}
      <ErrorMessage error={cancel.error} title="The agent could not be stopped" />
    </div>
  );
}

function Composer(props: {
  threadId: string;
  disabled: boolean;
  model: string | null;
  onSent: (m: ChatMessageView) => void;
}) {
  const id = useId();
  const area = useRef<HTMLTextAreaElement>(null);
  const [text, setText] = useState('');
  const send = useAction(
    async (body: string) => (await chat.send({ threadId: props.threadId, text: body })).message,
  );
  const disabled = props.disabled || send.pending;

  // Typing goes on where it stopped: the box is disabled while the agent answers, which
  // takes the focus away from it.
  const wasDisabled = useRef(disabled);
  useEffect(() => {
    const active = document.activeElement;
    if (wasDisabled.current && !disabled && (!active || active === document.body)) area.current?.focus();
    wasDisabled.current = disabled;
  }, [disabled]);

  const submit = async () => {
    const body = text.trim();
    if (!body || disabled) return;
    const message = await send.run(body);
    if (message) {
      setText('');
      props.onSent(message);
    }
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void submit();
    }
  };

  return (
    <form
      className="composer"
      aria-label="Send a message"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <ErrorMessage error={send.error} title="Your message was not sent" />
      <div className="field">
        <label htmlFor={id}>Message</label>
        <textarea
          id={id}
          ref={area}
          rows={3}
          value={text}
          maxLength={CHAT_MESSAGE_MAX}
          disabled={disabled}
          aria-describedby={`${id}-hint`}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
        />
        <p className="hint" id={`${id}-hint`}>
          Enter sends, Shift+Enter starts a new line.
          {props.model && <> Model: {props.model}.</>}
        </p>
      </div>
      <div className="actions">
        <button type="submit" className="button-primary" disabled={disabled || !text.trim()}>
          Send
        </button>
      </div>
    </form>
  );
}
