import type { ErrorBody, FieldIssue, MeView } from '@gateway/shared';

/** A failed REST call, carrying the API's stable code, message and field issues. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly issues: FieldIssue[];
  readonly requestId: string | undefined;

  constructor(status: number, body: Partial<ErrorBody['error']>) {
    super(body.message ?? `request failed (HTTP ${status})`);
    this.name = 'ApiError';
    this.status = status;
    this.code = body.code ?? 'internal';
    this.issues = body.issues ?? [];
    this.requestId = body.requestId;
  }

  /** The message of the issue at `path` (e.g. `body.slug`), or of any issue below it. */
  issueAt(path: string): string | undefined {
    return this.issues.find((i) => i.path === path || i.path.startsWith(`${path}.`))?.message;
  }
}

let csrfToken: string | undefined;

/** Where the browser goes to sign in, coming back to the page it is on. */
export function signInUrl(): string {
  return `/auth/login?returnTo=${encodeURIComponent(location.pathname + location.search)}`;
}

/**
 * Calls the REST API with the session cookie. Writes carry the session's CSRF token (the
 * server refuses cookie-authenticated writes without it). A 401 means the session ended:
 * the browser goes to the sign-in page and the promise never settles, so no page flashes
 * an error on its way out.
 */
export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const write = method !== 'GET' && method !== 'HEAD';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: {
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(write && csrfToken ? { 'x-csrf-token': csrfToken } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    throw new ApiError(0, {
      code: 'internal',
      message: 'The gateway cannot be reached. Check your connection.',
    });
  }
  if (res.status === 401) {
    location.assign(signInUrl());
    return new Promise<T>(() => {});
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const error = (json as Partial<ErrorBody> | undefined)?.error;
    throw new ApiError(res.status, error ?? { message: `request failed (HTTP ${res.status})` });
  }
  return json as T;
}

export const api = {
  get: <T>(path: string) => request<T>('GET', path),
  post: <T>(path: string, body: unknown = {}) => request<T>('POST', path, body),
  put: <T>(path: string, body: unknown) => request<T>('PUT', path, body),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, body),
  delete: <T = void>(path: string) => request<T>('DELETE', path),
};

/** Loads the signed-in user and remembers the CSRF token for later writes. */
export async function loadMe(): Promise<MeView> {
  const me = await api.get<MeView>('/api/me');
  csrfToken = me.csrfToken;
  return me;
}

/** The CSRF token of this session (for the sign-out form). */
export function currentCsrfToken(): string {
  return csrfToken ?? '';
}

/** A query string from defined, non-empty values (`?a=1&b=2`, or ''). */
export function query(params: Record<string, string | undefined | null | false>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
