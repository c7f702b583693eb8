import { useCallback, useEffect, useState } from 'react';
import { api, ApiError } from './api.ts';

interface Loaded<T> {
  key: string;
  data?: T;
  error?: Error;
}

/**
 * GETs `url` (null: nothing to load) and re-fetches when it changes or on `reload()`.
 * While a new request runs, the previous data stays on screen and `loading` is true.
 */
export function useApi<T>(url: string | null) {
  const [version, setVersion] = useState(0);
  const [state, setState] = useState<Loaded<T>>({ key: '' });
  const key = url === null ? '' : `${version}:${url}`;

  useEffect(() => {
    if (url === null) return;
    let cancelled = false;
    api.get<T>(url).then(
      (data) => !cancelled && setState({ key, data }),
      (error: unknown) => !cancelled && setState((s) => ({ key, data: s.data, error: toError(error) })),
    );
    return () => {
      cancelled = true;
    };
  }, [url, key]);

  const reload = useCallback(() => setVersion((v) => v + 1), []);
  return {
    data: state.data,
    error: state.key === key ? state.error : undefined,
    loading: url !== null && state.key !== key,
    reload,
  };
}

/** Runs a write (or any async step), keeping its pending state and its error for display. */
export function useAction<A extends unknown[], R>(fn: (...args: A) => Promise<R>) {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<Error | undefined>();
  const run = async (...args: A): Promise<R | undefined> => {
    setPending(true);
    setError(undefined);
    try {
      return await fn(...args);
    } catch (e) {
      setError(toError(e));
      return undefined;
    } finally {
      setPending(false);
    }
  };
  return { run, pending, error, clearError: () => setError(undefined) };
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new ApiError(0, { message: String(e) });
}

/** Sets the document title for the page on screen. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · MCP Gateway`;
  }, [title]);
}
