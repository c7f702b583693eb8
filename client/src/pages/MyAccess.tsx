import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { ApiKeyView, CreatedApiKey, OAuthGrantView, ServerView } from '@gateway/shared';
import {
  Badge,
  ConfirmButton,
  CopyField,
  EmptyState,
  ErrorMessage,
  Loading,
  PageHeader,
  TextField,
} from '../components/ui.tsx';
import { api, ApiError, query } from '../lib/api.ts';
import { formatRelative, formatTime } from '../lib/format.ts';
import { useAction, useApi, useTitle } from '../lib/hooks.ts';
import { isAdmin, useMe } from '../lib/me.ts';
import { navigate, useSearch } from '../lib/router.tsx';

/** The user's API keys and connected OAuth clients; admins may see everyone's. */
export function MyAccessPage() {
  useTitle('My access');
  const me = useMe();
  const search = useSearch();
  const all = isAdmin(me) && new URLSearchParams(search).get('all') === 'true';
  const suffix = query({ all: all && 'true' });
  const keys = useApi<{ keys: ApiKeyView[] }>(`/api/keys${suffix}`);
  const grants = useApi<{ grants: OAuthGrantView[] }>(`/api/oauth/grants${suffix}`);
  const [created, setCreated] = useState<CreatedApiKey | undefined>();

  return (
    <>
      <PageHeader title="My access">
        {isAdmin(me) && (
          <label className="toggle">
            <input
              type="checkbox"
              checked={all}
              onChange={(e) =>
                navigate(`/access${query({ all: e.target.checked && 'true' })}`, { replace: true })
              }
            />{' '}
            All users
          </label>
        )}
      </PageHeader>

      <section className="panel" aria-labelledby="keys-title">
        <h2 id="keys-title">{all ? 'API keys of all users' : 'API keys'}</h2>
        <p className="muted">
          For MCP clients that cannot sign in with OAuth: send the key as <code>Authorization: Bearer …</code>
          .
        </p>
        {created && <NewKey created={created} onDone={() => setCreated(undefined)} />}
        <ErrorMessage error={keys.error} title="The keys could not be loaded" />
        {keys.loading && !keys.data && <Loading />}
        {keys.data && (
          <KeysTable keys={keys.data.keys} showOwner={all} meId={me.id} onChanged={keys.reload} />
        )}
        <CreateKeyForm
          onCreated={(k) => {
            setCreated(k);
            keys.reload();
          }}
        />
      </section>

      <section className="panel" aria-labelledby="grants-title">
        <h2 id="grants-title">{all ? 'Connected clients of all users' : 'Connected clients'}</h2>
        <p className="muted">MCP clients you allowed with OAuth. Revoking one ends its access at once.</p>
        <ErrorMessage error={grants.error} title="The connected clients could not be loaded" />
        {grants.loading && !grants.data && <Loading />}
        {grants.data && (
          <GrantsTable grants={grants.data.grants} showOwner={all} meId={me.id} onChanged={grants.reload} />
        )}
      </section>
    </>
  );
}

function keyStatus(k: ApiKeyView, now: number): { label: string; tone: 'ok' | 'bad' | 'neutral' } {
  if (k.revokedAt) return { label: 'revoked', tone: 'bad' };
  if (k.expiresAt && Date.parse(k.expiresAt) <= now) return { label: 'expired', tone: 'neutral' };
  return { label: 'active', tone: 'ok' };
}

const owner = (userId: string, meId: string) => (userId === meId ? 'you' : userId);

function KeysTable(props: { keys: ApiKeyView[]; showOwner: boolean; meId: string; onChanged: () => void }) {
  const [now] = useState(() => Date.now());
  if (props.keys.length === 0) {
    return <EmptyState title="No API keys">Create one below when a client needs it.</EmptyState>;
  }
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">API keys</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Key</th>
            <th scope="col">Servers</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            <th scope="col">Status</th>
            {props.showOwner && <th scope="col">Owner</th>}
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {props.keys.map((k) => {
            const status = keyStatus(k, now);
            return (
              <tr key={k.id} data-key={k.name}>
                <th scope="row">{k.name}</th>
                <td>
                  <code>{k.prefix}…</code>
                </td>
                <td>{k.servers ? k.servers.join(', ') : <span className="muted">all</span>}</td>
                <td>{k.expiresAt ? formatTime(k.expiresAt) : <span className="muted">never</span>}</td>
                <td title={formatTime(k.lastUsedAt)}>{formatRelative(k.lastUsedAt, now)}</td>
                <td>
                  <Badge tone={status.tone}>{status.label}</Badge>
                </td>
                {props.showOwner && <td className="mono">{owner(k.userId, props.meId)}</td>}
                <td className="row-actions">
                  {!k.revokedAt && (
                    <ConfirmButton
                      label="Revoke"
                      ariaLabel={`Revoke key ${k.name}`}
                      title={`Revoke the key “${k.name}”?`}
                      message="Clients using this key lose access immediately. This cannot be undone."
                      confirmLabel="Revoke key"
                      onConfirm={async () => {
                        await api.delete(`/api/keys/${k.id}`);
                        props.onChanged();
                      }}
                    />
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** The new key, shown this once, with a copy button and an example client configuration. */
function NewKey({ created, onDone }: { created: CreatedApiKey; onDone: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  const endpoint = `${location.origin}/mcp${created.servers?.length === 1 ? `/${created.servers[0]}` : ''}`;
  const config = JSON.stringify(
    { mcpServers: { gateway: { url: endpoint, headers: { Authorization: `Bearer ${created.key}` } } } },
    null,
    2,
  );
  return (
    <div className="new-key" role="region" aria-labelledby="new-key-title">
      <h3 id="new-key-title" tabIndex={-1} ref={heading}>
        Your new key “{created.name}”
      </h3>
      <p className="alert alert-warn">
        <strong>Copy it now: it is shown only this once.</strong> The gateway keeps only a hash of it, so
        nobody can show it to you again. Keep it like a password.
      </p>
      <CopyField label="API key" value={created.key} />
      <details>
        <summary>Example client configuration</summary>
        <pre className="code">{config}</pre>
      </details>
      <button type="button" onClick={onDone}>
        I have copied it
      </button>
    </div>
  );
}

function CreateKeyForm({ onCreated }: { onCreated: (k: CreatedApiKey) => void }) {
  const servers = useApi<{ servers: ServerView[] }>('/api/servers');
  const [name, setName] = useState('');
  const [scoped, setScoped] = useState(false);
  const [chosen, setChosen] = useState<string[]>([]);
  const [expires, setExpires] = useState('');
  const create = useAction(async () => {
    // A date input gives a day: the key works until the end of it, in the user's time zone.
    const expiresAt = expires ? new Date(`${expires}T23:59:59`).toISOString() : undefined;
    return api.post<CreatedApiKey>('/api/keys', {
      name,
      ...(scoped ? { servers: chosen } : {}),
      ...(expiresAt ? { expiresAt } : {}),
    });
  });
  const error = create.error instanceof ApiError ? create.error : undefined;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const key = await create.run();
    if (key) {
      setName('');
      setScoped(false);
      setChosen([]);
      setExpires('');
      onCreated(key);
    }
  };
  const list = servers.data?.servers ?? [];
  return (
    <form className="subform" onSubmit={(e) => void submit(e)} aria-labelledby="create-key-title" noValidate>
      <h3 id="create-key-title">Create a key</h3>
      <div className="form-grid">
        <TextField
          label="Name"
          value={name}
          onValue={setName}
          required
          maxLength={200}
          placeholder="laptop"
          hint="What the key is for, to recognise it later."
          error={error?.issueAt('body.name')}
        />
        <TextField
          label="Expires"
          type="date"
          value={expires}
          onValue={setExpires}
          hint="Optional: the key stops working after this day."
          error={error?.issueAt('body.expiresAt')}
        />
      </div>
      <fieldset>
        <legend>Servers</legend>
        <label className="choice">
          <input type="radio" name="key-scope" checked={!scoped} onChange={() => setScoped(false)} /> Every
          server I may use
        </label>
        <label className="choice">
          <input type="radio" name="key-scope" checked={scoped} onChange={() => setScoped(true)} /> Only
          these:
        </label>
        {scoped && (
          <div className="checklist">
            {list.length === 0 && <span className="muted">You have no servers to choose from.</span>}
            {list.map((s) => (
              <label key={s.slug} className="choice">
                <input
                  type="checkbox"
                  checked={chosen.includes(s.slug)}
                  onChange={(e) =>
                    setChosen((c) => (e.target.checked ? [...c, s.slug] : c.filter((x) => x !== s.slug)))
                  }
                />{' '}
                {s.name} <code className="muted">{s.slug}</code>
              </label>
            ))}
          </div>
        )}
        {error?.issueAt('body.servers') && <p className="field-error">{error.issueAt('body.servers')}</p>}
      </fieldset>
      <ErrorMessage error={create.error} />
      <button type="submit" className="button-primary" disabled={create.pending}>
        {create.pending ? 'Creating…' : 'Create key'}
      </button>
    </form>
  );
}

function GrantsTable(props: {
  grants: OAuthGrantView[];
  showOwner: boolean;
  meId: string;
  onChanged: () => void;
}) {
  if (props.grants.length === 0) {
    return (
      <EmptyState title="No connected clients">
        When you allow an MCP client on the gateway&apos;s consent page, it appears here.
      </EmptyState>
    );
  }
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">Connected clients</caption>
        <thead>
          <tr>
            <th scope="col">Client</th>
            <th scope="col">Endpoints</th>
            <th scope="col">Connected</th>
            <th scope="col">Expires</th>
            {props.showOwner && <th scope="col">Owner</th>}
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {props.grants.map((g) => (
            <tr key={g.id}>
              <th scope="row">
                {g.clientName || g.clientId}
                {g.clientName && g.clientName !== g.clientId && (
                  <div className="muted small mono">{g.clientId}</div>
                )}
              </th>
              <td>
                {g.resources.length ? (
                  g.resources.map((r) => (
                    <div key={r}>
                      <code>{r}</code>
                    </div>
                  ))
                ) : (
                  <span className="muted">the gateway</span>
                )}
              </td>
              <td>{formatTime(g.createdAt)}</td>
              <td>{formatTime(g.expiresAt)}</td>
              {props.showOwner && <td className="mono">{owner(g.userId, props.meId)}</td>}
              <td className="row-actions">
                <ConfirmButton
                  label="Revoke"
                  ariaLabel={`Revoke ${g.clientName || g.clientId}`}
                  title={`Revoke ${g.clientName || g.clientId}?`}
                  message="The client's tokens stop working at once; it has to be allowed again to reconnect."
                  confirmLabel="Revoke client"
                  onConfirm={async () => {
                    await api.delete(`/api/oauth/grants/${encodeURIComponent(g.id)}`);
                    props.onChanged();
                  }}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
