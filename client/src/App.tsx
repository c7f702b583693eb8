import { useEffect, useState } from 'react';
import type { Readiness } from '@gateway/shared';

/** The workspace shell. Shows whether the gateway and its dependencies are ready. */
export function App() {
  const [readiness, setReadiness] = useState<Readiness | 'unreachable' | undefined>();

  useEffect(() => {
    let cancelled = false;
    fetch('/readyz')
      .then((r) => r.json() as Promise<Readiness>)
      .then((r) => !cancelled && setReadiness(r))
      .catch(() => !cancelled && setReadiness('unreachable'));
    return () => {
      cancelled = true;
    };
  }, []);

  return (
    <main className="shell">
      <header>
        <h1>MCP Gateway</h1>
        <p className="tagline">
          One door to your organisation&apos;s MCP servers, and a workspace to use them.
        </p>
      </header>
      <section aria-label="status" className="status">
        <h2>Status</h2>
        {readiness === undefined && <p>Checking…</p>}
        {readiness === 'unreachable' && <p role="alert">The gateway API is unreachable.</p>}
        {readiness && readiness !== 'unreachable' && (
          <>
            <p data-testid="readiness">{readiness.status === 'ready' ? 'Ready' : 'Not ready'}</p>
            <ul>
              {Object.entries(readiness.checks).map(([name, check]) => (
                <li key={name}>
                  {name}: {check.ok ? 'ok' : `unavailable (${check.error ?? 'unknown'})`}
                </li>
              ))}
            </ul>
          </>
        )}
      </section>
    </main>
  );
}
