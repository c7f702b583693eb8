import type { ChatMessageView, ToolCallView } from '@gateway/shared';
import { formatTime } from '../../lib/format.ts';
import { ToolCall } from './tool-call.tsx';

/**
 * The thread's messages, oldest first, then the agent's step in progress (its streamed
 * text and the calls not yet stored with a message).
 */
export function MessageLog(props: {
  threadId: string;
  messages: ChatMessageView[];
  streamingText: string;
  pendingCalls: ToolCallView[];
  /** The newest known state of a stored call. */
  latest: (call: ToolCallView) => ToolCallView;
  /** Who wrote the user's messages: "You", or the owner's name for a reader. */
  owner: string;
  canApprove: boolean;
  running: boolean;
}) {
  const { threadId, messages, streamingText, pendingCalls, canApprove } = props;
  return (
    <div className="chat-log" role="log" aria-label="Messages" aria-busy={props.running}>
      {messages.length === 0 && !streamingText && pendingCalls.length === 0 && (
        <p className="muted">No messages yet.</p>
      )}
      {messages.map((m) => (
        <Message
          key={m.id}
          message={m}
          author={m.role === 'user' ? props.owner : 'Agent'}
          calls={m.toolCalls.map(props.latest)}
          canApprove={canApprove}
        />
      ))}
      {(streamingText || pendingCalls.length > 0) && (
        <article className="message message-assistant" data-role="assistant" data-streaming="true">
          <header className="message-meta">
            <span className="message-author">Agent</span>
          </header>
          {streamingText && <div className="message-text">{streamingText}</div>}
          {pendingCalls.map((c) => (
            <ToolCall key={c.id} threadId={threadId} call={c} canApprove={canApprove} />
          ))}
        </article>
      )}
    </div>
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
