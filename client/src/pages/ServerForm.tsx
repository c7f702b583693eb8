import { useState, type FormEvent } from 'react';
import type { ServerView } from '@gateway/shared';
import { ErrorMessage, Loading, PageHeader, TextArea, TextField } from '../components/ui.tsx';
import { api, ApiError } from '../lib/api.ts';
import { useAction, useApi, useTitle } from '../lib/hooks.ts';
import { Link, navigate } from '../lib/router.tsx';
import { CredentialFields } from './server-form/credential-fields.tsx';
import { draftFrom, type Draft, type SetDraft, type TransportType } from './server-form/draft.ts';
import { OAuthFields } from './server-form/oauth-fields.tsx';
import { createBody, updateBody } from './server-form/payload.ts';
import { TransportFields } from './server-form/transport-fields.tsx';

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
  const set: SetDraft = (key) => (value) => setD((old) => ({ ...old, [key]: value }));
  const type: TransportType = replaceTransport || !existing ? d.type : existing.transport.type;

  const save = useAction(async () => {
    if (!existing) {
      await api.post<ServerView>('/api/servers', createBody(d));
      navigate(`/admin/servers?created=${encodeURIComponent(d.slug.trim())}`);
    } else {
      await api.patch<ServerView>(
        `/api/servers/${existing.slug}`,
        updateBody(d, type, { transport: replaceTransport, oauth: replaceOAuth }),
      );
      navigate(`/admin/servers?saved=${encodeURIComponent(existing.slug)}`);
    }
  });
  const error = save.error instanceof ApiError ? save.error : undefined;
  const issue = (path: string) => error?.issueAt(path);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void save.run();
  };

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

        <TransportFields
          d={d}
          set={set}
          issue={issue}
          existing={existing}
          replace={replaceTransport}
          onReplace={setReplaceTransport}
        />

        <CredentialFields
          fields={d.fields}
          type={type}
          issue={issue}
          onFields={(update) => setD((old) => ({ ...old, fields: update(old.fields) }))}
        />

        {type !== 'stdio' && (
          <OAuthFields
            d={d}
            set={set}
            issue={issue}
            existing={existing}
            replace={replaceOAuth}
            onReplace={setReplaceOAuth}
          />
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
