import { useState, type FormEvent } from 'react';
import type { AuditEventView, AuditPage as AuditPageBody, AuditStatus, ServerView } from '@gateway/shared';
import {
  Badge,
  Dialog,
  EmptyState,
  ErrorMessage,
  Loading,
  PageHeader,
  TextField,
} from '../components/ui.tsx';
import { api, query } from '../lib/api.ts';
import { formatTime } from '../lib/format.ts';
import { useAction, useApi, useTitle } from '../lib/hooks.ts';
import { useMe } from '../lib/me.ts';
import { navigate, useSearch } from '../lib/router.tsx';

const FILTERS = [
  'userId',
  'server',
  'action',
  'tool',
  'threadId',
  'status',
  'category',
  'from',
  'to',
] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

const STATUS_TONE: Record<AuditStatus, 'ok' | 'bad' | 'warn'> = { ok: 'ok', error: 'bad', denied: 'warn' };
const COMMON_ACTIONS = [
  'tools/call',
  'resources/read',
  'prompts/get',
  'initialize',
  'auth.login',
  'auth.logout',
  'auth.reject',
  'api_key.create',
  'api_key.revoke',
  'oauth.revoke',
  'server.create',
  'server.update',
  'server.delete',
  'access_rule.create',
  'access_rule.delete',
  'credential.put',
  'credential.delete',
];
const PAGE_SIZE = 50;

function filtersFrom(search: string): Filters {
  const params = new URLSearchParams(search);
  return Object.fromEntries(FILTERS.map((f) => [f, params.get(f) ?? ''])) as Filters;
}

/** ISO time → the value of a `datetime-local` input (local time, minutes). */
function toLocalInput(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Audit: the event trail with filters (kept in the address, so a view can be shared), paging and details. */
export function AuditPage() {
  useTitle('Audit');
  const search = useSearch();
  const filters = filtersFrom(search);
  const servers = useApi<{ servers: ServerView[] }>('/api/servers');
  const exportQuery = (format: string) => `/api/audit/export${query({ ...filters, format })}`;

  return (
    <>
      <PageHeader title="Audit">
        <a className="button button-small" href={exportQuery('csv')} download>
          Export CSV
        </a>
        <a className="button button-small" href={exportQuery('jsonl')} download>
          Export JSONL
        </a>
      </PageHeader>
      <FilterForm key={search} initial={filters} servers={servers.data?.servers ?? []} />
      <AuditResults key={`results${search}`} filters={filters} />
    </>
  );
}

function FilterForm({ initial, servers }: { initial: Filters; servers: ServerView[] }) {
  const [f, setF] = useState<Filters>({
    ...initial,
    from: initial.from && toLocalInput(initial.from),
    to: initial.to && toLocalInput(initial.to),
  });
  const set = (key: keyof Filters) => (value: string) => setF((old) => ({ ...old, [key]: value }));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const iso = (v: string) => (v ? new Date(v).toISOString() : '');
    navigate(
      `/audit${query({ ...f, userId: f.userId.trim(), threadId: f.threadId.trim(), from: iso(f.from), to: iso(f.to) })}`,
    );
  };
  const active = FILTERS.some((k) => initial[k]);
  return (
    <form className="panel filters" onSubmit={submit} aria-label="Filter events">
      <div className="filter-grid">
        <TextField label="User id" value={f.userId} onValue={set('userId')} className="mono" />
        <TextField label="Server" value={f.server} onValue={set('server')} list="audit-servers" />
        <datalist id="audit-servers">
          {servers.map((s) => (
            <option key={s.slug} value={s.slug}>
              {s.name}
            </option>
          ))}
        </datalist>
        <TextField label="Action" value={f.action} onValue={set('action')} list="audit-actions" />
        <datalist id="audit-actions">
          {COMMON_ACTIONS.map((a) => (
            <option key={a} value={a} />
          ))}
        </datalist>
        <TextField label="Tool" value={f.tool} onValue={set('tool')} />
        <TextField label="Thread" value={f.threadId} onValue={set('threadId')} className="mono" />
        <div className="field">
          <label htmlFor="audit-status">Status</label>
          <select id="audit-status" value={f.status} onChange={(e) => set('status')(e.target.value)}>
            <option value="">Any</option>
            <option value="ok">ok</option>
            <option value="error">error</option>
            <option value="denied">denied</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="audit-category">Category</label>
          <select id="audit-category" value={f.category} onChange={(e) => set('category')(e.target.value)}>
            <option value="">Any</option>
            <option value="mcp">MCP messages</option>
            <option value="auth">Sign-in and tokens</option>
            <option value="admin">Administration</option>
            <option value="credential">Credentials</option>
            <option value="chat">Chat</option>
          </select>
        </div>
        <TextField label="From" type="datetime-local" value={f.from} onValue={set('from')} />
        <TextField label="To" type="datetime-local" value={f.to} onValue={set('to')} />
      </div>
      <div className="actions">
        <button type="submit" className="button-primary">
          Apply filters
        </button>
        {active && (
          <button type="button" onClick={() => navigate('/audit')}>
            Clear
          </button>
        )}
      </div>
    </form>
  );
}

function AuditResults({ filters }: { filters: Filters }) {
  const me = useMe();
  const first = useApi<AuditPageBody>(`/api/audit${query({ ...filters, limit: String(PAGE_SIZE) })}`);
  const [more, setMore] = useState<AuditEventView[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined);
  const [selected, setSelected] = useState<AuditEventView | undefined>();
  const next = cursor === undefined ? first.data?.nextCursor : cursor;
  const loadMore = useAction(async () => {
    const page = await api.get<AuditPageBody>(
      `/api/audit${query({ ...filters, limit: String(PAGE_SIZE), cursor: next })}`,
    );
    setMore((m) => [...m, ...page.events]);
    setCursor(page.nextCursor);
  });

  if (first.error) return <ErrorMessage error={first.error} title="The events could not be loaded" />;
  if (!first.data) return <Loading label="Loading events…" />;
  const events = [...first.data.events, ...more];
  if (events.length === 0) {
    return <EmptyState title="No events match these filters" />;
  }
  return (
    <section aria-label="Events">
      <div className="table-wrap">
        <table className="audit-table">
          <caption className="visually-hidden">Audit events, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Action</th>
              <th scope="col">Status</th>
              <th scope="col">User</th>
              <th scope="col">Server</th>
              <th scope="col">Tool or resource</th>
              <th scope="col">Latency</th>
              <th scope="col">
                <span className="visually-hidden">Details</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr key={e.id} data-action={e.action}>
                <td className="nowrap">{formatTime(e.at, true)}</td>
                <td>
                  <code>{e.action}</code>
                </td>
                <td>
                  <Badge tone={STATUS_TONE[e.status]}>{e.status}</Badge>
                </td>
                <td className="mono small">{e.userId === me.id ? 'you' : (e.userId?.slice(0, 8) ?? '—')}</td>
                <td>{e.serverSlug ?? '—'}</td>
                <td className="truncate">{e.toolName ?? e.resourceUri ?? '—'}</td>
                <td className="nowrap">{e.latencyMs !== null ? `${e.latencyMs} ms` : '—'}</td>
                <td>
                  <button
                    type="button"
                    className="button-small"
                    onClick={() => setSelected(e)}
                    aria-label={`Details of ${e.action} at ${formatTime(e.at, true)}`}
                  >
                    Details
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <ErrorMessage error={loadMore.error} />
      <p className="muted" role="status">
        {events.length} event{events.length === 1 ? '' : 's'} shown{next ? '' : ', no more'}.
      </p>
      {next && (
        <button type="button" disabled={loadMore.pending} onClick={() => void loadMore.run()}>
          {loadMore.pending ? 'Loading…' : 'Load more'}
        </button>
      )}
      {selected && <EventDetails event={selected} onClose={() => setSelected(undefined)} />}
    </section>
  );
}

const DETAIL_FIELDS: [keyof AuditEventView, string][] = [
  ['at', 'Time'],
  ['category', 'Category'],
  ['action', 'Action'],
  ['status', 'Status'],
  ['error', 'Error'],
  ['userId', 'User'],
  ['serverSlug', 'Server'],
  ['toolName', 'Tool'],
  ['resourceUri', 'Resource'],
  ['threadId', 'Thread'],
  ['sessionId', 'Session'],
  ['apiKeyId', 'API key'],
  ['oauthClientId', 'OAuth client'],
  ['clientName', 'Client'],
  ['clientVersion', 'Client version'],
  ['ip', 'IP address'],
  ['direction', 'Direction'],
  ['latencyMs', 'Latency (ms)'],
  ['requestBytes', 'Request bytes'],
  ['responseBytes', 'Response bytes'],
  ['credentialScope', 'Credential used'],
  ['traceId', 'Trace id'],
  ['seq', 'Sequence'],
  ['id', 'Event id'],
  ['hash', 'Hash'],
];

function EventDetails({ event, onClose }: { event: AuditEventView; onClose: () => void }) {
  return (
    <Dialog title={`${event.action} · ${event.status}`} onClose={onClose}>
      <dl className="details-list">
        {DETAIL_FIELDS.filter(([k]) => event[k] !== null && event[k] !== undefined).map(([k, label]) => (
          <div key={k}>
            <dt>{label}</dt>
            <dd className={k === 'at' ? undefined : 'mono'}>
              {k === 'at' ? formatTime(event.at, true) : String(event[k])}
            </dd>
          </div>
        ))}
      </dl>
      <h3>Details</h3>
      {event.details === null || event.details === undefined ? (
        <p className="muted">None recorded.</p>
      ) : (
        <pre className="code" data-testid="event-details">
          {JSON.stringify(event.details, null, 2)}
        </pre>
      )}
      <div className="actions">
        <button type="button" onClick={onClose} autoFocus>
          Close
        </button>
      </div>
    </Dialog>
  );
}
