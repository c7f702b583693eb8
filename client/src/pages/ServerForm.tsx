import { useState, type FormEvent } from 'react';
import type { CredentialField, ServerView } from '@gateway/shared';
import { ErrorMessage, Loading, PageHeader, TextArea, TextField } from '../components/ui.tsx';
import { api, ApiError } from '../lib/api.ts';
import { useAction, useApi, useTitle } from '../lib/hooks.ts';
import { Link, navigate } from '../lib/router.tsx';

type TransportType = ServerView['transport']['type'];

interface FieldDraft {
  /** Stable React key (names change as the admin types). */
  key: number;
  name: string;
  label: string;
  description: string;
  secret: boolean;
  required: boolean;
}

interface Draft {
  slug: string;
  name: string;
  description: string;
  type: TransportType;
  command: string;
  args: string;
  env: string;
  cwd: string;
  url: string;
  headers: string;
  fields: FieldDraft[];
  enabled: boolean;
  threadIsolated: boolean;
  sensitiveTools: string;
  oauth: boolean;
  oauthScopes: string;
  oauthClientId: string;
  oauthClientSecret: string;
}

let nextKey = 1;

function draftFrom(view: ServerView | undefined): Draft {
  const t = view?.transport;
  // Static env and header values are secrets: the API shows only their names, so an edit
  // starts from the names with empty values.
  const blank = (names: string[]) =>
    names.length ? JSON.stringify(Object.fromEntries(names.map((n) => [n, ''])), null, 2) : '{}';
  return {
    slug: view?.slug ?? '',
    name: view?.name ?? '',
    description: view?.description ?? '',
    type: t?.type ?? 'stdio',
    command: t?.type === 'stdio' ? t.command : '',
    args: t?.type === 'stdio' ? JSON.stringify(t.args, null, 2) : '[]',
    env: t?.type === 'stdio' ? blank(t.envNames) : '{}',
    cwd: t?.type === 'stdio' ? (t.cwd ?? '') : '',
    url: t && t.type !== 'stdio' ? t.url : '',
    headers: t && t.type !== 'stdio' ? blank(t.headerNames) : '{}',
    fields: (view?.credentialFields ?? []).map((f) => ({
      key: nextKey++,
      name: f.name,
      label: f.label ?? '',
      description: f.description ?? '',
      secret: f.secret,
      required: f.required,
    })),
    enabled: view?.enabled ?? true,
    threadIsolated: view?.threadIsolated ?? false,
    sensitiveTools: (view?.sensitiveTools ?? []).join(', '),
    oauth: !!view?.oauth,
    oauthScopes: view?.oauth?.scopes.join(' ') ?? '',
    oauthClientId: view?.oauth?.clientId ?? '',
    oauthClientSecret: '',
  };
}

/** A problem found before sending (bad JSON), in the API's issue shape so both display alike. */
class DraftError extends ApiError {
  constructor(path: string, message: string) {
    super(400, { code: 'validation_failed', message: `${path}: ${message}`, issues: [{ path, message }] });
  }
}

function parseJson<T>(text: string, path: string, check: (v: unknown) => v is T, shape: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text.trim() || 'null');
  } catch (e) {
    throw new DraftError(path, `is not valid JSON (${(e as Error).message})`);
  }
  if (!check(value)) throw new DraftError(path, `must be ${shape}`);
  return value;
}

const isStringArray = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((x) => typeof x === 'string');
const isStringRecord = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.values(v).every((x) => typeof x === 'string');

function transportOf(d: Draft) {
  if (d.type === 'stdio') {
    return {
      type: 'stdio' as const,
      command: d.command.trim(),
      args: parseJson(d.args, 'body.transport.args', isStringArray, 'a JSON array of strings'),
      env: parseJson(d.env, 'body.transport.env', isStringRecord, 'a JSON object of strings'),
      ...(d.cwd.trim() ? { cwd: d.cwd.trim() } : {}),
    };
  }
  return {
    type: d.type,
    url: d.url.trim(),
    headers: parseJson(d.headers, 'body.transport.headers', isStringRecord, 'a JSON object of strings'),
  };
}

function credentialFieldsOf(d: Draft, type: TransportType): CredentialField[] {
  return d.fields.map((f) => ({
    name: f.name.trim(),
    kind: type === 'stdio' ? 'env' : 'header',
    ...(f.label.trim() ? { label: f.label.trim() } : {}),
    ...(f.description.trim() ? { description: f.description.trim() } : {}),
    secret: f.secret,
    required: f.required,
  }));
}

const list = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

function oauthOf(d: Draft) {
  if (!d.oauth) return null;
  return {
    scopes: list(d.oauthScopes),
    ...(d.oauthClientId.trim() ? { clientId: d.oauthClientId.trim() } : {}),
    ...(d.oauthClientSecret ? { clientSecret: d.oauthClientSecret } : {}),
  };
}

/** Admin › Servers › Add or Edit. */
export function ServerFormPage({ slug }: { slug?: string | undefined }) {
  useTitle(slug ? `Edit ${slug}` : 'Add server');
  const server = useApi<ServerView>(slug ? `/api/servers/${slug}` : null);
  if (!slug) return <ServerForm />;
  return (
    <>
      {!server.data && <PageHeader title={`Edit ${slug}`} />}
      <ErrorMessage error={server.error} title="The server could not be loaded" />
      {server.loading && !server.data && <Loading />}
      {server.data && <ServerForm existing={server.data} />}
    </>
  );
}

function ServerForm({ existing }: { existing?: ServerView }) {
  const editing = !!existing;
  const [d, setD] = useState<Draft>(() => draftFrom(existing));
  // Editing: the transport and OAuth settings hold secrets the form cannot show, so they
  // are sent (replaced whole) only when the admin chooses to.
  const [replaceTransport, setReplaceTransport] = useState(!editing);
  const [replaceOAuth, setReplaceOAuth] = useState(!editing);
  const set =
    <K extends keyof Draft>(key: K) =>
    (value: Draft[K]) =>
      setD((old) => ({ ...old, [key]: value }));
  const type: TransportType = replaceTransport || !existing ? d.type : existing.transport.type;

  const save = useAction(async () => {
    const common = {
      name: d.name.trim(),
      description: d.description,
      credentialFields: credentialFieldsOf(d, type),
      enabled: d.enabled,
      threadIsolated: d.threadIsolated,
      sensitiveTools: list(d.sensitiveTools),
    };
    if (!existing) {
      const oauth = type !== 'stdio' ? oauthOf(d) : null;
      await api.post<ServerView>('/api/servers', {
        slug: d.slug.trim(),
        ...common,
        transport: transportOf(d),
        ...(oauth ? { oauth } : {}),
      });
      navigate(`/admin/servers?created=${encodeURIComponent(d.slug.trim())}`);
    } else {
      await api.patch<ServerView>(`/api/servers/${existing.slug}`, {
        ...common,
        ...(replaceTransport ? { transport: transportOf(d) } : {}),
        ...(replaceOAuth && type !== 'stdio' ? { oauth: oauthOf(d) } : {}),
      });
      navigate(`/admin/servers?saved=${encodeURIComponent(existing.slug)}`);
    }
  });
  const error = save.error instanceof ApiError ? save.error : undefined;
  const issue = (path: string) => error?.issueAt(path);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void save.run();
  };

  const updateField = (key: number, patch: Partial<FieldDraft>) =>
    setD((old) => ({ ...old, fields: old.fields.map((f) => (f.key === key ? { ...f, ...patch } : f)) }));

  return (
    <>
      <PageHeader title={existing ? `Edit ${existing.name}` : 'Add server'} />
      <form
        className="server-form"
        onSubmit={submit}
        noValidate
        aria-label={existing ? 'Edit server' : 'New server'}
      >
        <section className="panel">
          <h2>Basics</h2>
          <div className="form-grid">
            {!editing && (
              <TextField
                label="Slug"
                value={d.slug}
                onValue={set('slug')}
                required
                placeholder="tracker"
                hint={
                  <>
                    Lowercase letters, digits and dashes; the endpoint is <code>/mcp/{d.slug || 'slug'}</code>
                    .
                  </>
                }
                error={issue('body.slug')}
              />
            )}
            <TextField
              label="Name"
              value={d.name}
              onValue={set('name')}
              required
              error={issue('body.name')}
            />
          </div>
          <TextArea
            label="Description"
            value={d.description}
            onValue={set('description')}
            rows={2}
            error={issue('body.description')}
          />
          <label className="choice">
            <input type="checkbox" checked={d.enabled} onChange={(e) => set('enabled')(e.target.checked)} />{' '}
            Enabled
          </label>
        </section>

        <section className="panel">
          <h2>Transport</h2>
          {editing && (
            <label className="choice">
              <input
                type="checkbox"
                checked={replaceTransport}
                onChange={(e) => setReplaceTransport(e.target.checked)}
              />{' '}
              Change the transport
              <span className="hint block">
                Static environment and header values are secret and not shown: changing the transport replaces
                them all, so type every value again.
              </span>
            </label>
          )}
          {replaceTransport ? (
            <>
              <fieldset className="radios">
                <legend>Type</legend>
                {(
                  [
                    ['stdio', 'Local program (stdio)'],
                    ['streamable-http', 'Remote: Streamable HTTP'],
                    ['sse', 'Remote: SSE (legacy)'],
                  ] as const
                ).map(([value, label]) => (
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

        <section className="panel" aria-labelledby="fields-title">
          <h2 id="fields-title">Credential fields</h2>
          <p className="muted">
            Values each user supplies for themselves:{' '}
            {type === 'stdio' ? 'environment variables of their process' : 'headers of their requests'}.
          </p>
          {d.fields.length === 0 && (
            <p className="muted">None: every user connects with the same settings.</p>
          )}
          {d.fields.map((f, i) => (
            <fieldset key={f.key} className="credential-field">
              <legend>Field {i + 1}</legend>
              <div className="form-grid">
                <TextField
                  label={type === 'stdio' ? 'Variable name' : 'Header name'}
                  value={f.name}
                  onValue={(v) => updateField(f.key, { name: v })}
                  required
                  placeholder={type === 'stdio' ? 'API_TOKEN' : 'X-Api-Key'}
                  error={issue(`body.credentialFields.${i}.name`) ?? issue(`body.credentialFields.${i}.kind`)}
                />
                <TextField
                  label="Label"
                  value={f.label}
                  onValue={(v) => updateField(f.key, { label: v })}
                  placeholder="API token"
                  error={issue(`body.credentialFields.${i}.label`)}
                />
              </div>
              <TextField
                label="Help text"
                value={f.description}
                onValue={(v) => updateField(f.key, { description: v })}
                error={issue(`body.credentialFields.${i}.description`)}
              />
              <div className="inline">
                <label className="choice">
                  <input
                    type="checkbox"
                    checked={f.secret}
                    onChange={(e) => updateField(f.key, { secret: e.target.checked })}
                  />{' '}
                  Secret
                </label>
                <label className="choice">
                  <input
                    type="checkbox"
                    checked={f.required}
                    onChange={(e) => updateField(f.key, { required: e.target.checked })}
                  />{' '}
                  Required
                </label>
                <button
                  type="button"
                  className="button-small button-danger"
                  onClick={() =>
                    setD((old) => ({ ...old, fields: old.fields.filter((x) => x.key !== f.key) }))
                  }
                >
                  Remove field {i + 1}
                </button>
              </div>
            </fieldset>
          ))}
          <button
            type="button"
            className="button-small"
            onClick={() =>
              setD((old) => ({
                ...old,
                fields: [
                  ...old.fields,
                  { key: nextKey++, name: '', label: '', description: '', secret: true, required: true },
                ],
              }))
            }
          >
            Add credential field
          </button>
        </section>

        {type !== 'stdio' && (
          <section className="panel">
            <h2>Upstream OAuth</h2>
            {editing && (
              <label className="choice">
                <input
                  type="checkbox"
                  checked={replaceOAuth}
                  onChange={(e) => setReplaceOAuth(e.target.checked)}
                />{' '}
                Change the OAuth settings
                <span className="hint block">
                  The client secret is not shown: type it again if there is one.
                </span>
              </label>
            )}
            {replaceOAuth ? (
              <>
                <label className="choice">
                  <input type="checkbox" checked={d.oauth} onChange={(e) => set('oauth')(e.target.checked)} />{' '}
                  The server requires OAuth: each user connects their own account
                </label>
                {d.oauth && (
                  <div className="form-grid">
                    <TextField
                      label="Scopes"
                      value={d.oauthScopes}
                      onValue={set('oauthScopes')}
                      hint="Space-separated; empty: what the server's metadata says."
                      error={issue('body.oauth.scopes')}
                    />
                    <TextField
                      label="Client id"
                      value={d.oauthClientId}
                      onValue={set('oauthClientId')}
                      hint="Empty: the gateway registers itself."
                      error={issue('body.oauth.clientId')}
                    />
                    <TextField
                      label="Client secret"
                      type="password"
                      autoComplete="new-password"
                      value={d.oauthClientSecret}
                      onValue={set('oauthClientSecret')}
                      error={issue('body.oauth.clientSecret')}
                    />
                  </div>
                )}
              </>
            ) : (
              <p className="muted">
                {existing?.oauth
                  ? `On (client ${existing.oauth.clientId ?? 'registered dynamically'}${existing.oauth.clientSecretSet ? ', secret set' : ''}).`
                  : 'Off.'}
              </p>
            )}
          </section>
        )}

        <section className="panel">
          <h2>Chat</h2>
          <label className="choice">
            <input
              type="checkbox"
              checked={d.threadIsolated}
              onChange={(e) => set('threadIsolated')(e.target.checked)}
            />{' '}
            Thread-isolated: in chat, only a thread&apos;s own credentials count
          </label>
          <TextField
            label="Tools that need approval in chat"
            value={d.sensitiveTools}
            onValue={set('sensitiveTools')}
            hint="Tool names, separated by commas or spaces."
            error={issue('body.sensitiveTools')}
          />
        </section>

        <div className="sticky-actions">
          <ErrorMessage
            error={save.error}
            title={existing ? 'The server was not saved' : 'The server was not created'}
          />
          <div className="actions">
            <button type="submit" className="button-primary" disabled={save.pending}>
              {save.pending
                ? existing
                  ? 'Saving…'
                  : 'Creating and discovering…'
                : existing
                  ? 'Save changes'
                  : 'Create server'}
            </button>
            <Link to="/admin/servers" className="button">
              Cancel
            </Link>
          </div>
        </div>
      </form>
    </>
  );
}
