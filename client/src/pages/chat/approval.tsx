import { ErrorMessage } from '../../components/ui.tsx';
import { useAction } from '../../lib/hooks.ts';
import { chat } from '../../lib/socket.ts';

/** The owner's decision on a call of a sensitive tool: approve or deny it. */
export function Approval({ threadId, callId }: { threadId: string; callId: string }) {
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
