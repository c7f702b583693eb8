// The guarded fetch: every connection and redirect of an outbound request is checked against the
// SSRF policy (ssrf.policy.ts), and the check runs inside the socket's DNS lookup, so the
// address that is checked is the address that is connected to.
import { isIP, type LookupFunction } from 'node:net';
import { Agent } from 'undici';
import { normalizeHost } from './ssrf.address.ts';
import {
  checkUrl,
  compilePolicy,
  isAllowListedHost,
  resolvedRefusal,
  SsrfError,
  systemLookup,
  type CompiledPolicy,
  type LookupFn,
  type SsrfPolicy,
} from './ssrf.policy.ts';

/**
 * A fetch (same signature as global fetch) that checks the URL before connecting, connects only
 * to checked addresses (custom lookup on an undici Agent, so DNS rebinding cannot swap the
 * address), follows redirects manually (max 5) checking each hop, and refuses redirects to a
 * different origin than the original request's origin (throws SsrfError). Headers, including
 * `Authorization`, are kept on the same-origin hops it follows.
 *
 * `redirect: 'manual'` returns a redirect response as it is (the MCP SDK follows redirects
 * itself, through this fetch again); `redirect: 'error'` fails on one. Response bodies stream.
 * `timeoutMs` (default 10 s) bounds connecting only: a tool call may take minutes to answer
 * and an SSE stream may idle for longer, so response timing is left to the caller's signal.
 * Each guarded fetch owns a connection pool: create one per policy and reuse it.
 */
export function createGuardedFetch(
  policy: SsrfPolicy,
  options: { lookup?: LookupFn; timeoutMs?: number } = {},
): typeof fetch {
  const rules = compilePolicy(policy);
  const agent = new Agent({
    connect: {
      lookup: checkedLookup(rules, options.lookup ?? systemLookup),
      timeout: options.timeoutMs ?? 10_000,
    },
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  // Node's fetch (undici 7 inside) drives the npm undici 7 Agent; keep the two majors in step.
  const dispatcher: RequestInit['dispatcher'] = agent;

  async function send(url: URL, hop: Hop, signal: AbortSignal | null | undefined): Promise<Response> {
    const init: RequestInit = { method: hop.method, headers: hop.headers, redirect: 'manual', dispatcher };
    if (hop.body !== undefined && hop.body !== null) {
      init.body = hop.body;
      init.duplex = 'half';
    }
    if (signal) {
      init.signal = signal;
    }
    try {
      return await fetch(url, init);
    } catch (error) {
      const refused = ssrfCause(error);
      // The lookup knew only the host name; report the URL of this hop.
      throw refused ? new SsrfError(url, refused.reason) : error;
    }
  }

  return async function guardedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    let url: URL;
    let hop: Hop;
    let signal: AbortSignal | null | undefined;
    let mode: NonNullable<RequestInit['redirect']>;
    if (input instanceof Request) {
      url = checkUrl(input.url, rules);
      const request = new Request(input, init);
      // Buffered so that a 307/308 can send it again.
      const body = request.body === null ? undefined : await request.arrayBuffer();
      hop = { method: request.method, headers: new Headers(request.headers), body };
      signal = request.signal;
      mode = request.redirect;
    } else {
      url = checkUrl(input, rules);
      hop = { method: init?.method ?? 'GET', headers: new Headers(init?.headers), body: init?.body };
      signal = init?.signal;
      mode = init?.redirect ?? 'follow';
    }
    const origin = url.origin;

    for (let redirects = 0; ; redirects++) {
      const response = await send(url, hop, signal);
      const location = REDIRECT_STATUSES.has(response.status) ? response.headers.get('location') : null;
      if (location === null || mode === 'manual') {
        return response;
      }
      await response.body?.cancel();
      if (mode === 'error') {
        throw new TypeError('fetch failed: the response is a redirect and redirect mode is "error"');
      }
      if (redirects === MAX_REDIRECTS) {
        throw new SsrfError(url, `more than ${MAX_REDIRECTS} redirects`);
      }
      let target: URL;
      try {
        target = new URL(location, url);
      } catch {
        throw new SsrfError(url, 'redirect to an invalid URL');
      }
      if (target.origin !== origin) {
        throw new SsrfError(target, `redirect from ${origin} to a different origin`);
      }
      url = checkUrl(target, rules);
      hop = redirectedHop(hop, response.status);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Redirects

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
/** Headers that describe a request body, dropped when a redirect turns the request into a GET. */
const REQUEST_BODY_HEADERS = [
  'content-encoding',
  'content-language',
  'content-location',
  'content-type',
  'content-length',
];

interface Hop {
  method: string;
  headers: Headers;
  body: RequestInit['body'];
}

/** The request for the next hop, per the fetch standard's HTTP-redirect fetch. */
function redirectedHop(hop: Hop, status: number): Hop {
  const method = hop.method.toUpperCase();
  if (
    (status === 303 && method !== 'GET' && method !== 'HEAD') ||
    ((status === 301 || status === 302) && method === 'POST')
  ) {
    const headers = new Headers(hop.headers);
    for (const name of REQUEST_BODY_HEADERS) {
      headers.delete(name);
    }
    return { method: 'GET', headers, body: undefined };
  }
  if (!isReplayable(hop.body)) {
    throw new TypeError('fetch failed: cannot follow a redirect with a streamed request body');
  }
  return hop;
}

function isReplayable(body: RequestInit['body']): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof Blob ||
    body instanceof URLSearchParams ||
    body instanceof FormData
  );
}

function ssrfCause(error: unknown): SsrfError | undefined {
  for (
    let current = error, depth = 0;
    current instanceof Error && depth < 5;
    current = current.cause, depth++
  ) {
    if (current instanceof SsrfError) {
      return current;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Connecting

/**
 * The `lookup` of the agent's sockets: resolves with the injected lookup and fails the
 * connection with an SsrfError unless every address is allowed, so only checked addresses are
 * ever connected to. Node calls it with `all: true` (happy eyeballs) or for a single address.
 */
function checkedLookup(rules: CompiledPolicy, lookup: LookupFn): LookupFunction {
  return (hostname, options, callback) => {
    const host = normalizeHost(hostname);
    const family = isIP(host);
    const resolving = family !== 0 ? Promise.resolve([{ address: host, family }]) : lookup(hostname);
    resolving
      .then((addresses) => {
        if (!isAllowListedHost(host, rules)) {
          const refusal = resolvedRefusal(host, addresses, rules);
          if (refusal !== undefined) {
            throw new SsrfError(`https://${hostname}`, refusal);
          }
        }
        const usable =
          options.family === 4 || options.family === 6
            ? addresses.filter((a) => a.family === options.family)
            : addresses;
        const first = usable[0];
        if (first === undefined) {
          throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
            code: 'ENOTFOUND',
            hostname,
          });
        }
        return { usable, first };
      })
      .then(
        ({ usable, first }) => {
          if (options.all === true) {
            callback(null, usable);
          } else {
            callback(null, first.address, first.family);
          }
        },
        (error: unknown) => {
          callback(error instanceof Error ? error : new Error(String(error)), '');
        },
      );
  };
}
