import type { ServerView } from '@gateway/shared';
import { TextArea, TextField } from '../../components/ui.tsx';
import type { Draft, IssueAt, SetDraft } from './draft.ts';

const TYPES = [
  ['stdio', 'Local program (stdio)'],
  ['streamable-http', 'Remote: Streamable HTTP'],
  ['sse', 'Remote: SSE (legacy)'],
] as const;

/**
 * The Transport section: a local command or a remote URL with its static settings. Editing,
 * it shows the current transport until the admin chooses to replace it.
 */
export function TransportFields(props: {
  d: Draft;
  set: SetDraft;
  issue: IssueAt;
  existing: ServerView | undefined;
  replace: boolean;
  onReplace: (replace: boolean) => void;
}) {
  const { d, set, issue, existing } = props;
  return (
    <section className="panel">
      <h2>Transport</h2>
      {existing && (
        <label className="choice">
          <input
            type="checkbox"
            checked={props.replace}
            onChange={(e) => props.onReplace(e.target.checked)}
          />{' '}
          Change the transport
          <span className="hint block">
            Static environment and header values are secret and not shown: changing the transport replaces
            them all, so type every value again.
          </span>
        </label>
      )}
      {props.replace ? (
        <>
          <fieldset className="radios">
            <legend>Type</legend>
            {TYPES.map(([value, label]) => (
              <label key={value} className="choice">
                <input
                  type="radio"
                  name="transport-type"
                  value={value}
                  checked={d.type === value}
                  onChange={() => set('type')(value)}
                />{' '}
                {label}
              </label>
            ))}
          </fieldset>
          {d.type === 'stdio' ? (
            <>
              <TextField
                label="Command"
                value={d.command}
                onValue={set('command')}
                required
                placeholder="npx"
                error={issue('body.transport.command')}
              />
              <div className="form-grid">
                <TextArea
                  label="Arguments (JSON array)"
                  value={d.args}
                  onValue={set('args')}
                  rows={4}
                  className="mono"
                  hint={<code>["-y", "@modelcontextprotocol/server-everything"]</code>}
                  error={issue('body.transport.args')}
                />
                <TextArea
                  label="Environment (JSON object)"
                  value={d.env}
                  onValue={set('env')}
                  rows={4}
                  className="mono"
                  hint="Static values for every user, stored encrypted and never shown again."
                  error={issue('body.transport.env')}
                />
              </div>
              <TextField
                label="Working directory"
                value={d.cwd}
                onValue={set('cwd')}
                hint="Optional."
                error={issue('body.transport.cwd')}
              />
            </>
          ) : (
            <>
              <TextField
                label="URL"
                type="url"
                value={d.url}
                onValue={set('url')}
                required
                placeholder="https://mcp.example.com/mcp"
                error={issue('body.transport.url')}
              />
              <TextArea
                label="Headers (JSON object)"
                value={d.headers}
                onValue={set('headers')}
                rows={3}
                className="mono"
                hint="Static headers for every user, stored encrypted and never shown again."
                error={issue('body.transport.headers')}
              />
            </>
          )}
        </>
      ) : (
        existing && (
          <p>
            <code>
              {existing.transport.type === 'stdio' ? existing.transport.command : existing.transport.url}
            </code>{' '}
            <span className="muted">({existing.transport.type})</span>
          </p>
        )
      )}
    </section>
  );
}
