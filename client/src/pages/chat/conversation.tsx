import { useId, useState } from 'react';
import { EmptyState, ErrorMessage, Loading, PageHeader } from '../../components/ui.tsx';
import { ApiError } from '../../lib/api.ts';
import { useTitle } from '../../lib/hooks.ts';
import { useMe } from '../../lib/me.ts';
import { navigate } from '../../lib/router.tsx';
import { useConnection } from '../../lib/socket.ts';
import { Composer } from './composer.tsx';
import { ConnectionNotice } from './connection-notice.tsx';
import { useFollowBottom } from './follow-bottom.ts';
import { useLiveThread } from './live-thread.ts';
import { MessageLog } from './message-log.tsx';
import { NoModelNotice, type ModelState } from './model-notice.tsx';
import { RunBar } from './run-bar.tsx';
import { ThreadActions } from './thread-actions.tsx';
import { ThreadCredentials } from './thread-credentials.tsx';

/**
 * The open thread: its header and actions, its messages live, the run state and the
 * composer. Someone else's thread (an admin reviewing it) is shown read-only.
 */
export function Conversation(props: { id: string; model: ModelState; onThreadsChanged: () => void }) {
  const { id, onThreadsChanged } = props;
  const me = useMe();
  const t = useLiveThread(id, onThreadsChanged);
  const { detail, thread, messages } = t;
  const [credentialsOpen, setCredentialsOpen] = useState(false);
  const credentialsId = useId();
  const connection = useConnection();

  useFollowBottom(
    detail.data !== undefined,
    `${messages.length}:${t.streamingText.length}:${t.liveCalls.map((c) => c.status).join()}`,
  );
  useTitle(thread ? thread.title : 'Chat');

  if (thread === null) {
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
  const running = t.running;

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
            onRenamed={(renamed) => {
              t.setThread(renamed);
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
      {!readOnly && t.joinError && connection.state === 'connected' && (
        <p className="alert alert-warn" role="alert">
          Live updates for this thread are off: {t.joinError.message}{' '}
          <button type="button" className="link-button" onClick={detail.reload}>
            Reload the thread
          </button>
        </p>
      )}
      {detail.error && <ErrorMessage error={detail.error} title="The thread could not be refreshed" />}

      <MessageLog
        threadId={id}
        messages={messages}
        streamingText={t.streamingText}
        pendingCalls={t.pendingCalls}
        latest={t.latest}
        owner={readOnly ? detail.data.userName : 'You'}
        canApprove={!readOnly}
        running={running}
      />

      <RunBar threadId={id} running={running} canStop={!readOnly} />
      {!readOnly &&
        (props.model.enabled === false ? (
          <NoModelNotice />
        ) : props.model.enabled ? (
          <Composer threadId={id} disabled={running} model={props.model.model} onSent={t.addMessage} />
        ) : null)}
    </>
  );
}
