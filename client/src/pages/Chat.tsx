import type { ChatStatusView, ThreadView } from '@gateway/shared';
import { EmptyState, PageHeader } from '../components/ui.tsx';
import { useApi, useTitle } from '../lib/hooks.ts';
import { Conversation } from './chat/conversation.tsx';
import { NoModelNotice, type ModelState } from './chat/model-notice.tsx';
import { ThreadList } from './chat/thread-list.tsx';

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

function NoThread({ model }: { model: ModelState }) {
  useTitle('Chat');
  return (
    <>
      <PageHeader title="Chat" />
      {model.enabled === false && <NoModelNotice />}
      <EmptyState title="Start a conversation">
        Open a thread from the list, or start one with “New thread”. The agent answers with the tools of the
        servers you can use, and asks before it runs a tool marked sensitive.
      </EmptyState>
    </>
  );
}
