// The SSRF policy: which URLs, host names and addresses an outbound connection may go to, and
// the check of a URL when it is registered (`assertUrlAllowed`). The guarded fetch
// (ssrf.fetch.ts) applies the same checks on every connection and redirect.
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { bareAddress, classifyAddress, embeddedIPv4, normalizeHost } from './ssrf.address.ts';

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

// ---------------------------------------------------------------------------------------------
// URL and host checks

/** An SsrfPolicy parsed once: its allow-list as host names, name suffixes and address ranges. */
export interface CompiledPolicy {
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
export function compilePolicy(policy: SsrfPolicy): CompiledPolicy {
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

/** Whether the allow-list names this host, exactly or by a `*.suffix` entry. */
export function isAllowListedHost(host: string, rules: CompiledPolicy): boolean {
  return rules.hosts.has(host) || rules.suffixes.some((suffix) => host.endsWith(suffix));
}

/** RFC 6761: `localhost` and its subdomains are loopback names. */
function isLocalhostName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

/** The checks that need no DNS: syntax, scheme, credentials, literal addresses, known names. */
export function checkUrl(input: string | URL, rules: CompiledPolicy): URL {
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
      // Name the switch: a newcomer's first server is often a local one over plain http.
      refuse(
        loopbackHost
          ? 'plain http is not allowed (https only; set UPSTREAM_ALLOW_LOOPBACK=true to reach servers on this machine over http)'
          : 'plain http is not allowed (https only)',
      );
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
      refuse(
        `${host} is a loopback host (set UPSTREAM_ALLOW_LOOPBACK=true to allow servers on this machine)`,
      );
    }
  }
  return url;
}

/** Why a host that resolved to `addresses` is refused, or undefined when every address is allowed. */
export function resolvedRefusal(
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

/** The system resolver: every address of a host, in the order it returns them. */
export const systemLookup: LookupFn = async (hostname) => {
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
