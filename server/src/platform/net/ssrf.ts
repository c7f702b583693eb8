// The SSRF guard for every outbound connection the gateway makes on a user's or admin's behalf
// (remote MCP servers, OAuth discovery and token endpoints). A URL is checked when it is
// registered (`assertUrlAllowed`) and again on every connection and redirect
// (`createGuardedFetch`). The connection-time check runs inside the socket's DNS lookup, so the
// address that is checked is the address that is connected to: a host that answered with a
// public address at registration and a private one now (DNS rebinding) is still refused.
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { domainToASCII } from 'node:url';
import { Agent } from 'undici';

/** Which outbound destinations are permitted beyond public https hosts. */
export interface SsrfPolicy {
  /** Permit http:// and loopback addresses (development and tests). */
  allowLoopback: boolean;
  /** Permit private-range addresses (e.g. an internal MCP server on the LAN). */
  allowPrivate: boolean;
  /** Host names (exact or *.suffix) and CIDRs that are always allowed. */
  allowList: readonly string[];
}

/** Resolves a host name to every address it has (the shape of `dns.lookup` with `all: true`). */
export type LookupFn = (hostname: string) => Promise<{ address: string; family: 4 | 6 }[]>;

/**
 * A connection the SSRF policy does not permit. The message is
 * `refused to connect to <origin>: <reason>`; neither it nor `url` carries the URL's userinfo,
 * path, query or fragment, which can hold secrets and this error is logged.
 */
export class SsrfError extends Error {
  /** The refused URL reduced to its scheme, host and port. */
  readonly url: string;
  /** Why it was refused, e.g. `10.0.0.1 is a private address`. */
  readonly reason: string;

  constructor(url: string | URL, reason: string) {
    const origin = redactedOrigin(url);
    super(`refused to connect to ${origin}: ${reason}`);
    this.name = 'SsrfError';
    this.url = origin;
    this.reason = reason;
  }
}

/**
 * Syntax + scheme + literal-IP/hostname checks, then DNS resolution of the host: every resolved
 * address must be allowed. Throws `SsrfError` when the URL is refused; an error of the lookup
 * itself (e.g. `ENOTFOUND`) propagates unchanged, as it says nothing about the policy.
 */
export async function assertUrlAllowed(
  url: string | URL,
  policy: SsrfPolicy,
  lookup: LookupFn = systemLookup,
): Promise<void> {
  const rules = compilePolicy(policy);
  const checked = checkUrl(url, rules);
  const host = normalizeHost(checked.hostname);
  if (isIP(host) !== 0 || isAllowListedHost(host, rules)) {
    return;
  }
  const refusal = resolvedRefusal(host, await lookup(checked.hostname), rules);
  if (refusal !== undefined) {
    throw new SsrfError(checked, refusal);
  }
}

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
// URL and host checks

interface CompiledPolicy {
  allowLoopback: boolean;
  allowPrivate: boolean;
  hosts: ReadonlySet<string>;
  /** From `*.example.com` entries: `.example.com`. */
  suffixes: readonly string[];
  nets: BlockList;
}

/** Names that reach a cloud provider's instance metadata service. */
const METADATA_HOSTS: ReadonlySet<string> = new Set(['metadata.google.internal', 'metadata.goog']);

/** Parses the allow-list once; a malformed entry is a configuration error. */
function compilePolicy(policy: SsrfPolicy): CompiledPolicy {
  const hosts = new Set<string>();
  const suffixes: string[] = [];
  const nets = new BlockList();
  for (const raw of policy.allowList) {
    const entry = raw.trim();
    const slash = entry.indexOf('/');
    const address = slash === -1 ? entry : entry.slice(0, slash);
    const family = isIP(address);
    if (family !== 0) {
      const type = family === 4 ? 'ipv4' : 'ipv6';
      const bits = family === 4 ? 32 : 128;
      const prefix = slash === -1 ? bits : Number(entry.slice(slash + 1));
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits || entry.slice(slash + 1) === '') {
        throw new TypeError(`invalid SSRF allow-list entry "${raw}": bad prefix length`);
      }
      nets.addSubnet(address, prefix, type);
      continue;
    }
    const wildcard = entry.startsWith('*.');
    const name = normalizeHost(domainToASCII(wildcard ? entry.slice(2) : entry));
    if (slash !== -1 || !/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(name)) {
      throw new TypeError(`invalid SSRF allow-list entry "${raw}": expected a host name, *.suffix or CIDR`);
    }
    if (wildcard) {
      suffixes.push(`.${name}`);
    } else {
      hosts.add(name);
    }
  }
  return { allowLoopback: policy.allowLoopback, allowPrivate: policy.allowPrivate, hosts, suffixes, nets };
}

/** Lower case, without IPv6 brackets or the trailing dot of a fully qualified name. */
function normalizeHost(host: string): string {
  let normal = host.toLowerCase();
  if (normal.startsWith('[') && normal.endsWith(']')) {
    normal = normal.slice(1, -1);
  }
  return normal.endsWith('.') ? normal.slice(0, -1) : normal;
}

function isAllowListedHost(host: string, rules: CompiledPolicy): boolean {
  return rules.hosts.has(host) || rules.suffixes.some((suffix) => host.endsWith(suffix));
}

/** RFC 6761: `localhost` and its subdomains are loopback names. */
function isLocalhostName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

/** The checks that need no DNS: syntax, scheme, credentials, literal addresses, known names. */
function checkUrl(input: string | URL, rules: CompiledPolicy): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new SsrfError('', 'not a valid URL');
  }
  const refuse = (reason: string): never => {
    throw new SsrfError(url, reason);
  };
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    refuse(`scheme ${url.protocol} is not allowed (https only)`);
  }
  if (url.username !== '' || url.password !== '') {
    refuse('credentials in the URL are not allowed (send them in a header)');
  }
  const host = normalizeHost(url.hostname);
  if (host === '') {
    refuse('the URL has no host');
  }
  const literal = isIP(host) !== 0;
  if (url.protocol === 'http:') {
    const loopbackHost = literal ? classifyAddress(host) === 'loopback' : isLocalhostName(host);
    if (!rules.allowLoopback) {
      refuse('plain http is not allowed (https only)');
    } else if (!loopbackHost) {
      refuse('plain http is allowed only to loopback hosts');
    }
  }
  if (literal) {
    const refusal = addressRefusal(host, rules);
    if (refusal !== undefined) {
      refuse(`${host} is ${refusal}`);
    }
  } else if (!isAllowListedHost(host, rules)) {
    if (METADATA_HOSTS.has(host)) {
      refuse(`${host} is a cloud metadata host`);
    }
    if (isLocalhostName(host) && !rules.allowLoopback) {
      refuse(`${host} is a loopback host`);
    }
  }
  return url;
}

/** Why a host that resolved to `addresses` is refused, or undefined when every address is allowed. */
function resolvedRefusal(
  host: string,
  addresses: readonly { address: string }[],
  rules: CompiledPolicy,
): string | undefined {
  if (addresses.length === 0) {
    return `${host} resolved to no address`;
  }
  for (const { address: raw } of addresses) {
    const address = bareAddress(raw);
    const refusal = addressRefusal(address, rules);
    if (refusal !== undefined) {
      return `${host} resolves to ${address}, which is ${refusal}`;
    }
    if (isLocalhostName(host) && classifyAddress(address) !== 'loopback') {
      return `${host} resolves to ${address}, which is not a loopback address`;
    }
  }
  return undefined;
}

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

const systemLookup: LookupFn = async (hostname) => {
  const addresses = await dnsLookup(hostname, { all: true, order: 'verbatim' });
  return addresses.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
};

function redactedOrigin(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'an invalid URL';
  }
  // `host` never includes the userinfo.
  return parsed.host === '' ? parsed.protocol : `${parsed.protocol}//${parsed.host}`;
}

// ---------------------------------------------------------------------------------------------
// Address classes

type AddressClass =
  | 'public'
  | 'private'
  | 'loopback'
  | 'link-local'
  | 'metadata'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'reserved';

/** Checked in this order, so the narrow classes win over the ranges that contain them. */
const RANGES: readonly (readonly [Exclude<AddressClass, 'public'>, readonly string[]])[] = [
  [
    'metadata',
    [
      '169.254.169.254/32', // AWS, GCP, Azure, OpenStack, DigitalOcean, ...
      '169.254.170.2/32', // AWS ECS task credentials
      '100.100.100.200/32', // Alibaba Cloud (inside CGNAT, which allowPrivate would permit)
      'fd00:ec2::254/128', // AWS IMDS over IPv6 (inside fc00::/7)
    ],
  ],
  ['unspecified', ['0.0.0.0/8', '::/128']],
  ['loopback', ['127.0.0.0/8', '::1/128']],
  ['private', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7', 'fec0::/10']],
  ['link-local', ['169.254.0.0/16', 'fe80::/10']],
  ['multicast', ['224.0.0.0/4', 'ff00::/8']],
  ['broadcast', ['255.255.255.255/32']],
  [
    'reserved',
    [
      '192.0.0.0/24', // IETF protocol assignments
      '192.0.2.0/24', // documentation
      '198.51.100.0/24', // documentation
      '203.0.113.0/24', // documentation
      '198.18.0.0/15', // benchmarking
      '192.88.99.0/24', // 6to4 relay anycast (deprecated)
      '240.0.0.0/4', // future use
      '::/96', // IPv4-compatible (deprecated)
      '::ffff:0:0:0/96', // IPv4-translated (SIIT)
      '64:ff9b:1::/48', // local-use NAT64
      '100::/64', // discard-only
      '2001::/32', // Teredo: the IPv4 server and client are obfuscated inside
      '2001:2::/48', // benchmarking
      '2001:10::/28', // ORCHID (deprecated)
      '2001:20::/28', // ORCHIDv2
      '2001:db8::/32', // documentation
      '3fff::/20', // documentation
      '5f00::/16', // SRv6 SIDs
    ],
  ],
];

const CLASS_LISTS: readonly (readonly [Exclude<AddressClass, 'public'>, BlockList])[] = RANGES.map(
  ([cls, cidrs]) => {
    const list = new BlockList();
    for (const cidr of cidrs) {
      const [address = '', prefix = ''] = cidr.split('/');
      list.addSubnet(address, Number(prefix), isIP(address) === 4 ? 'ipv4' : 'ipv6');
    }
    return [cls, list] as const;
  },
);

/** The class of an IP address; IPv6 forms that carry an IPv4 address get that address's class. */
function classifyAddress(address: string): AddressClass {
  const ip = bareAddress(address);
  const family = isIP(ip);
  if (family === 6) {
    const embedded = embeddedIPv4(ip);
    if (embedded !== undefined) {
      return classifyAddress(embedded);
    }
  } else if (family !== 4) {
    // Not an address at all: nothing to connect to that could be allowed.
    return 'reserved';
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const [cls, list] of CLASS_LISTS) {
    if (list.check(ip, type)) {
      return cls;
    }
  }
  // IANA has allocated only 2000::/3 for global unicast; the rest is unassigned.
  if (family === 6 && (ipv6Hextets(ip)[0]! & 0xe000) !== 0x2000) {
    return 'reserved';
  }
  return 'public';
}

/** What an address is when the policy refuses it (e.g. `a private address`), or undefined when it is allowed. */
function addressRefusal(ip: string, rules: CompiledPolicy): string | undefined {
  const family = isIP(ip);
  const embedded = family === 6 ? embeddedIPv4(ip) : undefined;
  if (
    (family !== 0 && rules.nets.check(ip, family === 4 ? 'ipv4' : 'ipv6')) ||
    (embedded !== undefined && rules.nets.check(embedded, 'ipv4'))
  ) {
    return undefined;
  }
  const cls = classifyAddress(ip);
  switch (cls) {
    case 'public':
      return undefined;
    case 'loopback':
      return rules.allowLoopback ? undefined : 'a loopback address';
    case 'private':
      return rules.allowPrivate ? undefined : 'a private address';
    case 'link-local':
      return 'a link-local address';
    case 'metadata':
      return 'a cloud metadata address';
    case 'unspecified':
      return 'an unspecified address';
    case 'multicast':
      return 'a multicast address';
    case 'broadcast':
      return 'a broadcast address';
    case 'reserved':
      return 'a reserved address';
  }
}

/** An address as Node and BlockList take it: no brackets, no zone index. */
function bareAddress(address: string): string {
  return stripZone(normalizeHost(address));
}

function stripZone(address: string): string {
  const percent = address.indexOf('%');
  return percent === -1 ? address : address.slice(0, percent);
}

/**
 * The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`, also written `::ffff:a00:1`),
 * NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) address: connecting to one of those reaches
 * the IPv4 address, so it is judged as that address.
 */
function embeddedIPv4(ipv6: string): string | undefined {
  const h = ipv6Hextets(ipv6);
  const [h0, h1, h2, h3, h4, h5, h6, h7] = h as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (h0 === 0 && h1 === 0 && h2 === 0 && h3 === 0 && h4 === 0 && h5 === 0xffff) {
    return dottedQuad(h6, h7);
  }
  if (h0 === 0x64 && h1 === 0xff9b && h2 === 0 && h3 === 0 && h4 === 0 && h5 === 0) {
    return dottedQuad(h6, h7);
  }
  if (h0 === 0x2002) {
    return dottedQuad(h1, h2);
  }
  return undefined;
}

function dottedQuad(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** The eight 16-bit groups of a valid IPv6 address (any textual form, including a dotted tail). */
function ipv6Hextets(ipv6: string): number[] {
  let text = ipv6;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const groups = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((group) => parseInt(group, 16));
  const [head = '', rest] = text.split('::');
  if (rest === undefined) {
    return groups(head);
  }
  const before = groups(head);
  const after = groups(rest);
  return [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
}
