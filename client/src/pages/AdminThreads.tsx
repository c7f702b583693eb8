import type { ThreadView } from '@gateway/shared';
import { Badge, EmptyState, ErrorMessage, Loading, PageHeader } from '../components/ui.tsx';
import { query } from '../lib/api.ts';
import { formatRelative, formatTime } from '../lib/format.ts';
import { useApi, useTitle } from '../lib/hooks.ts';
import { useMe } from '../lib/me.ts';
import { Link } from '../lib/router.tsx';

const LIMIT = 200;

/** Admin › Threads: every user's chat threads (admins and auditors), to read them and their tool calls. */
export function AdminThreadsPage() {
  useTitle('Admin · Threads');
  const me = useMe();
  const threads = useApi<{ threads: ThreadView[] }>(`/api/admin/threads${query({ limit: String(LIMIT) })}`);
  const list = threads.data?.threads ?? [];
  return (
    <>
      <PageHeader title="Admin · Threads" />
      <p className="muted">
        Every user&apos;s chat threads. Viewing someone else&apos;s thread is read-only; the tool calls its
        agent made are in the audit trail.
      </p>
      <ErrorMessage error={threads.error} title="The threads could not be loaded" />
      {threads.loading && !threads.data && <Loading label="Loading threads…" />}
      {threads.data && list.length === 0 && <EmptyState title="No threads yet" />}
      {list.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Chat threads of all users</caption>
            <thead>
              <tr>
                <th scope="col">Title</th>
                <th scope="col">Owner</th>
                <th scope="col">Messages</th>
                <th scope="col">Updated</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((t) => (
                <tr key={t.id} data-thread={t.id}>
                  <th scope="row">
                    {t.title} {t.running && <Badge tone="info">answering</Badge>}
                  </th>
                  <td>{t.userId === me.id ? `${t.userName} (you)` : t.userName}</td>
                  <td>{t.messageCount}</td>
                  <td className="nowrap">
                    <time dateTime={t.updatedAt} title={formatTime(t.updatedAt)}>
                      {formatRelative(t.updatedAt)}
                    </time>
                  </td>
                  <td className="row-actions">
                    <Link to={`/chat/${t.id}`} className="button button-small" aria-label={`View ${t.title}`}>
                      View
                    </Link>{' '}
                    <Link
                      to={`/audit${query({ threadId: t.id })}`}
                      className="button button-small"
                      aria-label={`Tool calls of ${t.title}`}
                    >
                      Tool calls
                    </Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list.length >= LIMIT && (
        <p className="muted" role="status">
          Only the first {LIMIT} threads are shown.
        </p>
      )}
    </>
  );
}
