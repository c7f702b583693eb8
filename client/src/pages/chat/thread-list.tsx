import type { ThreadView } from '@gateway/shared';
import { ErrorMessage, Loading } from '../../components/ui.tsx';
import { api } from '../../lib/api.ts';
import { formatRelative, formatTime } from '../../lib/format.ts';
import { useAction } from '../../lib/hooks.ts';
import { Link, navigate } from '../../lib/router.tsx';

/** The user's threads, newest first, with a button that starts a new one. */
export function ThreadList(props: {
  threads: ThreadView[] | undefined;
  error: Error | undefined;
  currentId: string | undefined;
  onChanged: () => void;
}) {
  const create = useAction(async () => {
    const thread = await api.post<ThreadView>('/api/threads', {});
    props.onChanged();
    navigate(`/chat/${thread.id}`);
  });
  return (
    <nav className="thread-list panel" aria-labelledby="threads-title">
      <div className="thread-list-header">
        <h2 id="threads-title">Threads</h2>
        <button
          type="button"
          className="button-primary button-small"
          disabled={create.pending}
          onClick={() => void create.run()}
        >
          New thread
        </button>
      </div>
      <ErrorMessage error={create.error} title="The thread could not be created" />
      <ErrorMessage error={props.error} title="Your threads could not be loaded" />
      {!props.threads && !props.error && <Loading label="Loading threads…" />}
      {props.threads?.length === 0 && <p className="muted">No threads yet.</p>}
      {props.threads && props.threads.length > 0 && (
        <ul className="thread-links">
          {props.threads.map((t) => (
            <li key={t.id}>
              <Link
                to={`/chat/${t.id}`}
                className="thread-link"
                aria-current={t.id === props.currentId ? 'page' : undefined}
                data-thread={t.id}
              >
                <span className="thread-title">{t.title}</span>
                <span className="thread-meta">
                  <time dateTime={t.updatedAt} title={formatTime(t.updatedAt)}>
                    {formatRelative(t.updatedAt)}
                  </time>
                  {t.running && ' · answering'}
                </span>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </nav>
  );
}
