import type { CredentialView, ServerView } from '@gateway/shared';
import { CredentialsForm, OAuthConnect } from '../../components/credentials.tsx';
import { Badge, ErrorMessage, Loading } from '../../components/ui.tsx';
import { useApi } from '../../lib/hooks.ts';
import { Link } from '../../lib/router.tsx';

/**
 * The thread's own credentials, server by server: the agent uses them in this thread instead
 * of the user's own (on a thread-isolated server, only they count).
 */
export function ThreadCredentials({ id, threadId }: { id: string; threadId: string }) {
  const servers = useApi<{ servers: ServerView[] }>('/api/servers');
  const credentials = useApi<{ credentials: CredentialView[] }>('/api/credentials');
  const list = (servers.data?.servers ?? []).filter((s) => s.credentialFields.length > 0 || s.oauth);
  const stored = credentials.data?.credentials ?? [];
  const find = (slug: string, kind: CredentialView['kind'], thread: string | null) =>
    stored.find((c) => c.serverSlug === slug && c.kind === kind && c.threadId === thread);
  const loaded = servers.data !== undefined && credentials.data !== undefined;
  return (
    <section id={id} className="panel thread-credentials" aria-label="Thread credentials">
      <p className="muted small">
        Values stored here are for this thread only: the agent uses them here instead of your own (from{' '}
        <Link to="/servers">Servers</Link>), and they are deleted with the thread.
      </p>
      <ErrorMessage error={servers.error} title="The servers could not be loaded" />
      <ErrorMessage error={credentials.error} title="Your credentials could not be loaded" />
      {!loaded && !servers.error && !credentials.error && <Loading label="Loading credentials…" />}
      {loaded && list.length === 0 && (
        <p className="muted">None of the servers you can use asks for credentials.</p>
      )}
      {loaded && list.length > 0 && (
        <ul className="thread-credential-list">
          {list.map((s) => (
            <li key={s.id}>
              <section aria-labelledby={`${id}-${s.slug}`} data-thread-credentials={s.slug}>
                <h3 id={`${id}-${s.slug}`}>
                  {s.name} <code className="slug">{s.slug}</code>
                  {s.threadIsolated && (
                    <>
                      {' '}
                      <Badge tone="info" title="In chat, only the thread's own credentials count">
                        thread-isolated
                      </Badge>
                    </>
                  )}
                  {!s.enabled && (
                    <>
                      {' '}
                      <Badge tone="warn">disabled</Badge>
                    </>
                  )}
                </h3>
                {s.oauth && (
                  <OAuthConnect
                    server={s}
                    threadId={threadId}
                    credential={find(s.slug, 'oauth', threadId)}
                    userCredential={find(s.slug, 'oauth', null)}
                    onChanged={credentials.reload}
                  />
                )}
                {s.credentialFields.length > 0 && (
                  <CredentialsForm
                    server={s}
                    threadId={threadId}
                    credential={find(s.slug, 'values', threadId)}
                    userCredential={find(s.slug, 'values', null)}
                    onChanged={credentials.reload}
                  />
                )}
              </section>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
