import type { ServerView } from '@gateway/shared';
import { Badge, ConfirmButton, EmptyState, ErrorMessage, Loading, PageHeader } from '../components/ui.tsx';
import { api } from '../lib/api.ts';
import { formatRelative, plural } from '../lib/format.ts';
import { useAction, useApi, useTitle } from '../lib/hooks.ts';
import { Link, navigate, useSearch } from '../lib/router.tsx';
import { HEALTH_TONE, transportSummary } from './Servers.tsx';

/** Admin › Servers: every registered server, with enable/disable, discovery, edit and delete. */
export function AdminServersPage() {
  useTitle('Admin · Servers');
  const servers = useApi<{ servers: ServerView[] }>('/api/servers');
  const params = new URLSearchParams(useSearch());
  const flash = params.get('created')
    ? `Server “${params.get('created')}” was created.`
    : params.get('saved')
      ? `Server “${params.get('saved')}” was saved.`
      : undefined;
  const list = servers.data?.servers ?? [];
  return (
    <>
      <PageHeader title="Admin · Servers">
        <Link to="/admin/servers/new" className="button button-primary">
          Add server
        </Link>
      </PageHeader>
      {flash && (
        <p className="alert alert-ok" role="status">
          {flash}{' '}
          <button
            type="button"
            className="link-button"
            onClick={() => navigate('/admin/servers', { replace: true })}
          >
            Dismiss
          </button>
        </p>
      )}
      <ErrorMessage error={servers.error} title="The servers could not be loaded" />
      {servers.loading && !servers.data && <Loading />}
      {servers.data && list.length === 0 && (
        <EmptyState title="No servers registered">
          <Link to="/admin/servers/new">Add the first one</Link>: a local program the gateway starts (stdio)
          or a remote MCP server (Streamable HTTP or SSE).
        </EmptyState>
      )}
      <ul className="cards" aria-label="Registered servers">
        {list.map((s) => (
          <li key={s.id}>
            <AdminServerRow server={s} onChanged={servers.reload} />
          </li>
        ))}
      </ul>
    </>
  );
}

function AdminServerRow({ server: s, onChanged }: { server: ServerView; onChanged: () => void }) {
  const toggle = useAction(async () => {
    await api.patch(`/api/servers/${s.slug}`, { enabled: !s.enabled });
    onChanged();
  });
  const discover = useAction(async () => {
    const view = await api.post<ServerView>(`/api/servers/${s.slug}/discover`);
    onChanged();
    return view;
  });
  const c = s.capabilities;
  const titleId = `admin-server-${s.slug}`;
  return (
    <article className="card" aria-labelledby={titleId} data-server={s.slug}>
      <header className="card-header">
        <h2 id={titleId}>{s.name}</h2>
        <code className="slug">{s.slug}</code>
        <span className="badges">
          <Badge tone={s.enabled ? 'ok' : 'warn'}>{s.enabled ? 'enabled' : 'disabled'}</Badge>
          {s.health && <Badge tone={HEALTH_TONE[s.health]}>{s.health}</Badge>}
          {s.source === 'file' && (
            <Badge tone="info" title="Declared in MCP_SERVERS_FILE: the file wins at the next start">
              from file
            </Badge>
          )}
        </span>
      </header>
      <p className="transport">
        <code>{transportSummary(s.transport)}</code>
      </p>
      <p className="capability-counts" data-testid="capability-counts">
        {c ? (
          <>
            {plural(c.tools.length, 'tool')} ·{' '}
            {plural(c.resources.length + c.resourceTemplates.length, 'resource')} ·{' '}
            {plural(c.prompts.length, 'prompt')}
          </>
        ) : (
          'Capabilities not discovered'
        )}
        {s.capabilitiesAt && <span className="muted"> · checked {formatRelative(s.capabilitiesAt)}</span>}
      </p>
      {s.capabilitiesError && (
        <p className="capabilities-error" role="note">
          Discovery failed: {s.capabilitiesError}
        </p>
      )}
      {s.credentialFields.length > 0 && (
        <p className="muted">Each user supplies: {s.credentialFields.map((f) => f.name).join(', ')}</p>
      )}
      <ErrorMessage error={toggle.error ?? discover.error} />
      <div className="actions">
        <button
          type="button"
          className="button-small"
          disabled={discover.pending}
          onClick={() => void discover.run()}
        >
          {discover.pending ? 'Discovering…' : 'Discover capabilities'}
        </button>
        <button
          type="button"
          className="button-small"
          disabled={toggle.pending}
          onClick={() => void toggle.run()}
        >
          {s.enabled ? 'Disable' : 'Enable'}
        </button>
        <Link
          to={`/admin/servers/${s.slug}/edit`}
          className="button button-small"
          aria-label={`Edit ${s.name}`}
        >
          Edit
        </Link>
        <ConfirmButton
          label="Delete"
          ariaLabel={`Delete ${s.name}`}
          title={`Delete the server “${s.name}”?`}
          message={
            <p>
              Its endpoint <code>/mcp/{s.slug}</code> stops working, and every user&apos;s stored credentials
              for it are deleted. Access rules naming it go with it.
            </p>
          }
          confirmLabel="Delete server"
          onConfirm={async () => {
            await api.delete(`/api/servers/${s.slug}`);
            onChanged();
          }}
        />
      </div>
    </article>
  );
}
