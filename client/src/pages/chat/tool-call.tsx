import type { ToolCallStatus, ToolCallView } from '@gateway/shared';
import { Badge, type Tone } from '../../components/ui.tsx';
import { Approval } from './approval.tsx';

const CALL_STATUS: Record<ToolCallStatus, { label: string; tone: Tone }> = {
  running: { label: 'running', tone: 'info' },
  awaiting_approval: { label: 'awaiting approval', tone: 'warn' },
  ok: { label: 'ok', tone: 'ok' },
  error: { label: 'error', tone: 'bad' },
  denied: { label: 'denied', tone: 'warn' },
};

/** One tool call of the agent: its status, input and output, and the approval it waits for. */
export function ToolCall({
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
