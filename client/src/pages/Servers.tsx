import { useState } from 'react';
import type { CredentialView, ServerView, UpstreamHealthView, UpstreamStatus } from '@gateway/shared';
import { CredentialsForm, OAuthConnect } from '../components/credentials.tsx';
import {
  Badge,
  CopyField,
  EmptyState,
  ErrorMessage,
  Loading,
  PageHeader,
  TextField,
  type Tone,
} from '../components/ui.tsx';
import { formatRelative, formatTime, plural } from '../lib/format.ts';
import { useApi, useTitle } from '../lib/hooks.ts';
import { isAdmin, useMe } from '../lib/me.ts';
import { Link } from '../lib/router.tsx';

export const HEALTH_TONE: Record<UpstreamStatus, Tone> = {
  up: 'ok',
  degraded: 'warn',
  down: 'bad',
  unknown: 'neutral',
};

/** `stdio · node server.js stdio` or `streamable-http · https://…`. */
export function transportSummary(t: ServerView['transport']): string {
  if (t.type === 'stdio') {
    const command = t.command.split(/[\\/]/).pop() ?? t.command;
    const args = t.args.map((a) => (a.length > 40 ? `…${a.slice(-32)}` : a)).join(' ');
    return `stdio · ${command}${args ? ` ${args}` : ''}`;
  }
  return `${t.type} · ${t.url}`;
}

/** The catalog: every server the user may use, its endpoint, capabilities and the user's credentials. */
export function ServersPage() {
  useTitle('Servers');
  const me = useMe();
  const servers = useApi<{ servers: ServerView[] }>('/api/servers');
  const credentials = useApi<{ credentials: CredentialView[] }>('/api/credentials');
  const [filter, setFilter] = useState('');
  const list = servers.data?.servers ?? [];
  const needle = filter.trim().toLowerCase();
  const shown = needle
    ? list.filter((s) => `${s.name} ${s.slug} ${s.description}`.toLowerCase().includes(needle))
    : list;

  return (
    <>
      <PageHeader title="Servers" />
      <section className="panel" aria-labelledby="connect-title">
        <h2 id="connect-title">Connect an MCP client</h2>
        <p className="muted">
          Point your MCP client at an endpoint; it signs you in with OAuth. Clients without OAuth use an API
          key from <Link to="/access">My access</Link>.
        </p>
        <CopyField label="All your servers (aggregate endpoint)" value={`${location.origin}/mcp`} />
      </section>

      <ErrorMessage error={servers.error} title="The servers could not be loaded" />
      {servers.loading && !servers.data && <Loading label="Loading servers…" />}
      {servers.data && list.length === 0 && (
        <EmptyState title="No servers yet">
          {isAdmin(me) ? (
            <>
              Register one under <Link to="/admin/servers/new">Admin › Servers</Link>.
            </>
          ) : (
            'You have not been given access to any server. Ask an administrator.'
          )}
        </EmptyState>
      )}
      {list.length > 3 && (
        <TextField
          label="Filter servers"
          type="search"
          value={filter}
          onValue={setFilter}
          className="filter-field"
        />
      )}
      {list.length > 0 && shown.length === 0 && <EmptyState title={`No server matches “${filter}”`} />}
      <ul className="cards" aria-label="Servers">
        {shown.map((s) => (
          <li key={s.id}>
            <ServerCard
              server={s}
              credentials={(credentials.data?.credentials ?? []).filter(
                (c) => c.serverSlug === s.slug && c.threadId === null,
              )}
              onCredentialsChanged={credentials.reload}
            />
          </li>
        ))}
      </ul>
    </>
  );
}

function ServerCard(props: {
  server: ServerView;
  credentials: CredentialView[];
  onCredentialsChanged: () => void;
}) {
  const s = props.server;
  const titleId = `server-${s.slug}`;
  return (
    <article className="card" aria-labelledby={titleId} data-server={s.slug}>
      <header className="card-header">
        <h2 id={titleId}>{s.name}</h2>
        <code className="slug">{s.slug}</code>
        <span className="badges">
          {!s.enabled && <Badge tone="warn">disabled</Badge>}
          {s.health && (
            <Badge tone={HEALTH_TONE[s.health]} title="Latest health check">
              {s.health}
            </Badge>
          )}
          {s.oauth && <Badge tone="info">OAuth</Badge>}
        </span>
      </header>
      {s.description && <p className="description">{s.description}</p>}
      <p className="transport">
        <span className="visually-hidden">Transport: </span>
        <code>{transportSummary(s.transport)}</code>
      </p>
      <CopyField label="Endpoint" value={`${location.origin}/mcp/${s.slug}`} />
      <Capabilities server={s} />
      {s.health && <HealthDetails slug={s.slug} />}
      {(s.credentialFields.length > 0 || s.oauth) && (
        <section className="credentials" aria-label={`Your credentials for ${s.name}`}>
          <h3>Your credentials</h3>
          {s.oauth && (
            <OAuthConnect
              server={s}
              credential={props.credentials.find((c) => c.kind === 'oauth')}
              onChanged={props.onCredentialsChanged}
            />
          )}
          {s.credentialFields.length > 0 && (
            <CredentialsForm
              server={s}
              credential={props.credentials.find((c) => c.kind === 'values')}
              onChanged={props.onCredentialsChanged}
            />
          )}
        </section>
      )}
    </article>
  );
}

/** Tools, resources and prompts as discovered, each list expandable. */
export function Capabilities({ server }: { server: ServerView }) {
  const c = server.capabilities;
  if (!c) {
    return server.capabilitiesError ? (
      <p className="capabilities-error" role="note">
        Capabilities could not be discovered: {server.capabilitiesError}
      </p>
    ) : (
      <p className="muted">Capabilities not discovered yet.</p>
    );
  }
  const resources = [
    ...c.resources.map((r) => ({ key: r.uri, name: r.name, detail: r.uri })),
    ...c.resourceTemplates.map((r) => ({ key: r.uriTemplate, name: r.name, detail: r.uriTemplate })),
  ];
  return (
    <div className="capabilities" aria-label="Capabilities">
      <p className="capability-counts" data-testid="capability-counts">
        {plural(c.tools.length, 'tool')} · {plural(resources.length, 'resource')} ·{' '}
        {plural(c.prompts.length, 'prompt')}
        <span className="muted">
          {' '}
          · {c.serverInfo.name} {c.serverInfo.version}
          {server.capabilitiesAt && <> · discovered {formatRelative(server.capabilitiesAt)}</>}
        </span>
      </p>
      {c.tools.length > 0 && (
        <details>
          <summary>Tools ({c.tools.length})</summary>
          <ul className="capability-list">
            {c.tools.map((t) => (
              <li key={t.name}>
                <code>{t.name}</code>
                {server.sensitiveTools.includes(t.name) && <Badge tone="warn">needs approval in chat</Badge>}
                {t.description && <span className="muted"> — {t.description}</span>}
              </li>
            ))}
          </ul>
        </details>
      )}
      {resources.length > 0 && (
        <details>
          <summary>Resources ({resources.length})</summary>
          <ul className="capability-list">
            {resources.map((r) => (
              <li key={r.key}>
                {r.name} <code className="muted">{r.detail}</code>
              </li>
            ))}
          </ul>
        </details>
      )}
      {c.prompts.length > 0 && (
        <details>
          <summary>Prompts ({c.prompts.length})</summary>
          <ul className="capability-list">
            {c.prompts.map((p) => (
              <li key={p.name}>
                <code>{p.name}</code>
                {p.description && <span className="muted"> — {p.description}</span>}
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

/** The latest health checks, fetched when opened. */
function HealthDetails({ slug }: { slug: string }) {
  const [open, setOpen] = useState(false);
  const health = useApi<UpstreamHealthView>(open ? `/api/servers/${slug}/health` : null);
  const h = health.data;
  return (
    <details onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>Health</summary>
      {health.loading && !h && <Loading />}
      <ErrorMessage error={health.error} />
      {h && (
        <div className="health">
          <p>
            <Badge tone={HEALTH_TONE[h.status]}>{h.status}</Badge>{' '}
            {h.checkedAt ? (
              <>
                checked {formatRelative(h.checkedAt)}
                {h.latencyMs !== null && <> · ping {h.latencyMs} ms</>}
              </>
            ) : (
              'not checked yet'
            )}
          </p>
          {h.error && <p className="muted">{h.error}</p>}
          {h.history.length > 1 && (
            <ol className="health-history" aria-label="Recent checks, newest first">
              {h.history.map((c) => (
                <li
                  key={c.checkedAt}
                  className={`dot dot-${HEALTH_TONE[c.status]}`}
                  title={`${formatTime(c.checkedAt, true)}: ${c.status}${c.error ? ` (${c.error})` : ''}`}
                >
                  <span className="visually-hidden">
                    {formatTime(c.checkedAt, true)}: {c.status}
                  </span>
                </li>
              ))}
            </ol>
          )}
        </div>
      )}
    </details>
  );
}
