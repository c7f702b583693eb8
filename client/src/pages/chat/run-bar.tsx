import { ErrorMessage } from '../../components/ui.tsx';
import { useAction } from '../../lib/hooks.ts';
import { chat } from '../../lib/socket.ts';

/** Whether the agent is answering, and (for the owner) the button that stops it. */
export function RunBar({
  threadId,
  running,
  canStop,
}: {
  threadId: string;
  running: boolean;
  canStop: boolean;
}) {
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
