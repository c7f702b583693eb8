import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { MeView } from '@gateway/shared';
import { ErrorMessage, PageHeader } from './components/ui.tsx';
import { loadMe } from './lib/api.ts';
import { canReadAudit, isAdmin, MeContext, useMe } from './lib/me.ts';
import { Link, match, usePath } from './lib/router.tsx';
import { AccessRulesPage } from './pages/AccessRules.tsx';
import { AdminServersPage } from './pages/AdminServers.tsx';
import { AdminThreadsPage } from './pages/AdminThreads.tsx';
import { AuditPage } from './pages/Audit.tsx';
import { ChatPage } from './pages/Chat.tsx';
import { MyAccessPage } from './pages/MyAccess.tsx';
import { ServerFormPage } from './pages/ServerForm.tsx';
import { ServersPage } from './pages/Servers.tsx';

/** Loads the signed-in user (a 401 sends the browser to sign in), then shows the shell. */
export function App() {
  const [me, setMe] = useState<MeView | undefined>();
  const [error, setError] = useState<Error | undefined>();
  useEffect(() => {
    loadMe().then(setMe, (e: Error) => setError(e));
  }, []);

  if (error) {
    return (
      <main className="boot">
        <h1>MCP Gateway</h1>
        <ErrorMessage error={error} title="Your account could not be loaded" />
        <button type="button" onClick={() => location.reload()}>
          Try again
        </button>
      </main>
    );
  }
  if (!me) {
    return (
      <main className="boot" role="status">
        Loading…
      </main>
    );
  }
  return (
    <MeContext value={me}>
      <Shell />
    </MeContext>
  );
}

interface NavItem {
  to: string;
  label: string;
  /** Paths under `to` also mark it current. */
  prefix?: boolean;
}

function navFor(me: MeView): { title?: string; items: NavItem[] }[] {
  const groups: { title?: string; items: NavItem[] }[] = [
    {
      items: [
        { to: '/chat', label: 'Chat', prefix: true },
        { to: '/servers', label: 'Servers' },
        { to: '/access', label: 'My access' },
      ],
    },
  ];
  if (isAdmin(me)) {
    groups.push({
      title: 'Admin',
      items: [
        { to: '/admin/servers', label: 'Servers', prefix: true },
        { to: '/admin/access-rules', label: 'Access rules' },
        { to: '/admin/threads', label: 'Threads' },
      ],
    });
    groups.push({ items: [{ to: '/audit', label: 'Audit' }] });
  } else if (canReadAudit(me)) {
    // Auditors read every thread and the audit trail, and change nothing.
    groups.push({
      title: 'Review',
      items: [
        { to: '/admin/threads', label: 'Threads' },
        { to: '/audit', label: 'Audit' },
      ],
    });
  }
  return groups;
}

function Shell() {
  const me = useMe();
  const path = usePath();
  const [menuOpen, setMenuOpen] = useState(false);
  const firstRender = useRef(true);

  // After an in-app navigation, focus the new page's heading (as a page load would), and
  // close the narrow-screen menu.
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    document.getElementById('page-title')?.focus();
    window.scrollTo(0, 0);
  }, [path]);

  const current = (item: NavItem) =>
    path === item.to ||
    (item.to === '/servers' && path === '/') ||
    (item.prefix && path.startsWith(`${item.to}/`));

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/servers" className="brand">
          MCP Gateway
        </Link>
        <button
          type="button"
          className="menu-toggle"
          aria-expanded={menuOpen}
          aria-controls="main-nav"
          onClick={() => setMenuOpen((o) => !o)}
        >
          Menu
        </button>
        <nav id="main-nav" aria-label="Main" className={menuOpen ? 'open' : undefined}>
          {navFor(me).map((group, i) => (
            <div className="nav-group" key={group.title ?? i}>
              {group.title && <span className="nav-title">{group.title}</span>}
              <ul>
                {group.items.map((item) => (
                  <li key={item.to}>
                    <Link
                      to={item.to}
                      aria-current={current(item) ? 'page' : undefined}
                      aria-label={group.title ? `${group.title}: ${item.label}` : undefined}
                      onClick={() => setMenuOpen(false)}
                    >
                      {item.label}
                    </Link>
                  </li>
                ))}
              </ul>
            </div>
          ))}
        </nav>
        <div className="user" aria-label="Signed in user">
          <span className="user-name" data-testid="user-name">
            {me.displayName}
          </span>
          <span className={`role role-${me.role}`} data-testid="user-role">
            {me.role}
          </span>
          <form method="post" action="/auth/logout">
            <input type="hidden" name="_csrf" value={me.csrfToken ?? ''} />
            <button type="submit" className="button-small">
              Sign out
            </button>
          </form>
        </div>
      </header>
      <main id="main" className="content">
        <Page path={path} me={me} />
      </main>
    </div>
  );
}

function Page({ path, me }: { path: string; me: MeView }): ReactNode {
  if (path === '/' || path === '/servers') return <ServersPage />;
  if (path === '/access') return <MyAccessPage />;
  if (path === '/chat') return <ChatPage />;
  const thread = match('/chat/:threadId', path);
  if (thread) return <ChatPage threadId={thread['threadId']} />;
  if (path === '/audit') return canReadAudit(me) ? <AuditPage /> : <Forbidden who="admins and auditors" />;
  // Auditors read every thread too: this admin page is not for admins only.
  if (path === '/admin/threads') {
    return canReadAudit(me) ? <AdminThreadsPage /> : <Forbidden who="admins and auditors" />;
  }
  if (path.startsWith('/admin/') && !isAdmin(me)) return <Forbidden who="admins" />;
  if (path === '/admin/servers') return <AdminServersPage />;
  if (path === '/admin/servers/new') return <ServerFormPage />;
  const edit = match('/admin/servers/:slug/edit', path);
  if (edit) return <ServerFormPage key={edit['slug']} slug={edit['slug']} />;
  if (path === '/admin/access-rules') return <AccessRulesPage />;
  return (
    <>
      <PageHeader title="Page not found" />
      <p>
        There is no page at <code>{path}</code>. <Link to="/servers">Go to the servers</Link>.
      </p>
    </>
  );
}

function Forbidden({ who }: { who: string }) {
  return (
    <>
      <PageHeader title="Not available" />
      <p role="alert">This page is for {who} only.</p>
    </>
  );
}
