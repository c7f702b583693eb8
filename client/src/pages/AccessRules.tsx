import { useState, type FormEvent } from 'react';
import type { AccessRuleView, ServerView } from '@gateway/shared';
import {
  ConfirmButton,
  EmptyState,
  ErrorMessage,
  Loading,
  PageHeader,
  TextField,
} from '../components/ui.tsx';
import { api, ApiError } from '../lib/api.ts';
import { useAction, useApi, useTitle } from '../lib/hooks.ts';
import { useMe } from '../lib/me.ts';

type SubjectType = AccessRuleView['subjectType'];

const subjectText = (r: AccessRuleView, meId: string) =>
  r.subjectType === 'everyone'
    ? 'Everyone'
    : r.subjectType === 'user' && r.subject === meId
      ? `${r.subject} (you)`
      : r.subject;

/** Admin › Access rules: who may use which server, and which of its tools. */
export function AccessRulesPage() {
  useTitle('Admin · Access rules');
  const me = useMe();
  const rules = useApi<{ rules: AccessRuleView[] }>('/api/access-rules');
  const servers = useApi<{ servers: ServerView[] }>('/api/servers');
  const list = rules.data?.rules ?? [];
  const nameOf = (slug: string) => servers.data?.servers.find((s) => s.slug === slug)?.name;

  return (
    <>
      <PageHeader title="Admin · Access rules" />
      <p className="muted">
        Without a rule, a user sees no server (admins see all). A rule may grant only some tools: the others
        are neither listed nor callable.
      </p>
      <section className="panel" aria-labelledby="rules-title">
        <h2 id="rules-title">Rules</h2>
        <ErrorMessage error={rules.error} title="The rules could not be loaded" />
        {rules.loading && !rules.data && <Loading />}
        {rules.data && list.length === 0 && (
          <EmptyState title="No access rules">Only admins can use the servers. Add a rule below.</EmptyState>
        )}
        {list.length > 0 && (
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Access rules</caption>
              <thead>
                <tr>
                  <th scope="col">Who</th>
                  <th scope="col">Server</th>
                  <th scope="col">Tools</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((r) => (
                  <tr key={r.id}>
                    <td>
                      <span className="muted small">
                        {r.subjectType === 'everyone' ? '' : `${r.subjectType} `}
                      </span>
                      <span className={r.subjectType === 'user' ? 'mono' : undefined}>
                        {subjectText(r, me.id)}
                      </span>
                    </td>
                    <td>
                      {nameOf(r.server) ?? r.server} <code className="muted">{r.server}</code>
                    </td>
                    <td>
                      {r.tools ? (
                        r.tools.map((t) => (
                          <code key={t} className="tag">
                            {t}
                          </code>
                        ))
                      ) : (
                        <span className="muted">all tools</span>
                      )}
                    </td>
                    <td className="row-actions">
                      <ConfirmButton
                        label="Delete"
                        ariaLabel={`Delete the rule for ${subjectText(r, me.id)} on ${r.server}`}
                        title="Delete this access rule?"
                        message={
                          <p>
                            {subjectText(r, me.id)} loses the access it grants to <code>{r.server}</code> at
                            their next request (other rules still count).
                          </p>
                        }
                        confirmLabel="Delete rule"
                        onConfirm={async () => {
                          await api.delete(`/api/access-rules/${r.id}`);
                          rules.reload();
                        }}
                      />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <CreateRuleForm servers={servers.data?.servers ?? []} meId={me.id} onCreated={rules.reload} />
    </>
  );
}

function CreateRuleForm(props: { servers: ServerView[]; meId: string; onCreated: () => void }) {
  const [subjectType, setSubjectType] = useState<SubjectType>('group');
  const [subject, setSubject] = useState('');
  const [server, setServer] = useState('');
  const [allTools, setAllTools] = useState(true);
  const [tools, setTools] = useState<string[]>([]);
  const [extra, setExtra] = useState('');
  const [created, setCreated] = useState(false);
  const selected = props.servers.find((s) => s.slug === server);
  const known = selected?.capabilities?.tools.map((t) => t.name) ?? [];

  const create = useAction(async () => {
    const named = [...tools, ...extra.split(/[\s,]+/).filter(Boolean)];
    await api.post<AccessRuleView>('/api/access-rules', {
      subjectType,
      ...(subjectType !== 'everyone' ? { subject: subject.trim() } : {}),
      server,
      ...(allTools ? {} : { tools: [...new Set(named)] }),
    });
    return true;
  });
  const error = create.error instanceof ApiError ? create.error : undefined;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setCreated(false);
    if (await create.run()) {
      setSubject('');
      setTools([]);
      setExtra('');
      setAllTools(true);
      setCreated(true);
      props.onCreated();
    }
  };

  return (
    <form className="panel" onSubmit={(e) => void submit(e)} aria-labelledby="new-rule-title" noValidate>
      <h2 id="new-rule-title">Add a rule</h2>
      <fieldset className="radios">
        <legend>Who</legend>
        {(
          [
            ['group', 'A group'],
            ['user', 'A user'],
            ['everyone', 'Everyone'],
          ] as const
        ).map(([value, label]) => (
          <label key={value} className="choice">
            <input
              type="radio"
              name="subject-type"
              checked={subjectType === value}
              onChange={() => setSubjectType(value)}
            />{' '}
            {label}
          </label>
        ))}
      </fieldset>
      <div className="form-grid">
        {subjectType !== 'everyone' && (
          <div>
            <TextField
              label={subjectType === 'group' ? 'Group name' : 'User id'}
              value={subject}
              onValue={setSubject}
              required
              placeholder={subjectType === 'group' ? 'engineering' : '00000000-0000-0000-0000-000000000000'}
              hint={
                subjectType === 'group'
                  ? 'As the identity provider names it in the groups claim.'
                  : 'The user id, as shown on audit events and API keys.'
              }
              error={error?.issueAt('body.subject')}
            />
            {subjectType === 'user' && (
              <button type="button" className="link-button" onClick={() => setSubject(props.meId)}>
                Use my id
              </button>
            )}
          </div>
        )}
        <div className="field">
          <label htmlFor="rule-server">Server</label>
          <select
            id="rule-server"
            value={server}
            onChange={(e) => {
              setServer(e.target.value);
              setTools([]);
            }}
            required
            aria-invalid={error?.issueAt('body.server') ? true : undefined}
          >
            <option value="">Choose a server…</option>
            {props.servers.map((s) => (
              <option key={s.slug} value={s.slug}>
                {s.name} ({s.slug})
              </option>
            ))}
          </select>
          {error?.issueAt('body.server') && <p className="field-error">{error.issueAt('body.server')}</p>}
        </div>
      </div>
      <fieldset className="radios">
        <legend>Tools</legend>
        <label className="choice">
          <input type="radio" name="rule-tools" checked={allTools} onChange={() => setAllTools(true)} /> All
          tools
        </label>
        <label className="choice">
          <input type="radio" name="rule-tools" checked={!allTools} onChange={() => setAllTools(false)} />{' '}
          Only these tools:
        </label>
        {!allTools && (
          <div className="checklist">
            {known.map((t) => (
              <label key={t} className="choice">
                <input
                  type="checkbox"
                  checked={tools.includes(t)}
                  onChange={(e) => setTools((c) => (e.target.checked ? [...c, t] : c.filter((x) => x !== t)))}
                />{' '}
                <code>{t}</code>
              </label>
            ))}
            <TextField
              label={known.length ? 'Other tool names' : 'Tool names'}
              value={extra}
              onValue={setExtra}
              hint={
                known.length
                  ? 'Tools not discovered yet, separated by commas.'
                  : 'The server’s tools are not discovered yet: name them, separated by commas.'
              }
            />
          </div>
        )}
        {error?.issueAt('body.tools') && <p className="field-error">{error.issueAt('body.tools')}</p>}
      </fieldset>
      <ErrorMessage error={create.error} title="The rule was not added" />
      {created && (
        <p className="alert alert-ok" role="status">
          Rule added.
        </p>
      )}
      <button type="submit" className="button-primary" disabled={create.pending}>
        {create.pending ? 'Adding…' : 'Add rule'}
      </button>
    </form>
  );
}
