import { isIP } from 'node:net';
import type { Request, RequestHandler } from 'express';
import { AppError } from './errors.ts';

/** A Host header value split into a lower-case name (IPv6 without brackets) and a port ('' when none). */
function parseHost(value: string): { name: string; port: string } | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]\s]+)(?::(\d{1,5}))?$/i.exec(value.trim());
  if (!m) return undefined;
  const name = m[1]!
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  return name ? { name, port: m[2] ?? '' } : undefined;
}

/** A Host without a port means the scheme's default, which a proxy in front may have changed. */
const DEFAULT_PORTS = new Set(['80', '443']);

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/**
 * Which Host header values the gateway answers (DNS-rebinding protection). A page on an
 * attacker's domain whose name is re-pointed at the gateway reaches it with that domain as
 * both Host and Origin, so checking Origin against Host alone lets it through; checking Host
 * against the names the gateway is really served under does not. Accepted:
 *
 * - PUBLIC_URL's host (its port, or the scheme's default);
 * - `localhost`, `127.0.0.1` and `[::1]` on the listening port (a local start, tests, and a
 *   container's own health checks: none of these names can be re-pointed by anyone else);
 * - any IP address literal: rebinding needs a DNS name, and a browser that sends an address
 *   as Host connected to that address itself (load balancer and orchestrator probes use it);
 * - ALLOWED_HOSTS entries: `name` (any port), `name:port`, or `*` (no check at all).
 */
export class HostPolicy {
  readonly #exact = new Set<string>();
  readonly #anyPort = new Set<string>();
  readonly #any: boolean;

  constructor(options: {
    publicUrl: string | undefined;
    listenPort: number;
    allowedHosts: readonly string[];
  }) {
    if (options.publicUrl) {
      const u = new URL(options.publicUrl);
      const host = parseHost(u.host);
      if (host) this.#add(host.name, host.port || (u.protocol === 'https:' ? '443' : '80'));
    }
    for (const name of LOOPBACK_NAMES) this.#add(name, String(options.listenPort));
    this.#any = options.allowedHosts.includes('*');
    for (const entry of options.allowedHosts) {
      const host = parseHost(entry);
      if (!host) continue;
      if (host.port) this.#add(host.name, host.port);
      else this.#anyPort.add(host.name);
    }
  }

  #add(name: string, port: string) {
    this.#exact.add(`${name} ${port}`);
    if (DEFAULT_PORTS.has(port)) this.#exact.add(`${name} `);
  }

  /** True when a request with this Host (from the Host header, or a trusted X-Forwarded-Host) may be served. */
  allows(hostHeader: string | undefined): boolean {
    if (this.#any) return true;
    if (!hostHeader) return false;
    const host = parseHost(hostHeader);
    if (!host) return false;
    if (isIP(host.name)) return true;
    return this.#exact.has(`${host.name} ${host.port}`) || this.#anyPort.has(host.name);
  }

  /**
   * Whether `req` may be served. `req.host` is express's reading: the Host header, or
   * X-Forwarded-Host only when TRUST_PROXY trusts the hop that sent it.
   */
  allowsRequest(req: Request): boolean {
    return this.allows(req.host);
  }
}

/** Health probes are answered whatever the Host: probes address a replica as they like, and reveal nothing. */
const EXEMPT = new Set(['/healthz', '/readyz']);

/**
 * Refuses requests whose Host the policy does not accept (403), everywhere but the health
 * probes and the paths in `skip` (the MCP endpoints check Host themselves, to answer with a
 * JSON-RPC error).
 */
export function requireAllowedHost(policy: HostPolicy, skip: (path: string) => boolean): RequestHandler {
  return (req, _res, next) => {
    if (EXEMPT.has(req.path) || skip(req.path) || policy.allowsRequest(req)) return next();
    next(new AppError('forbidden', 'this Host is not served here (set PUBLIC_URL or ALLOWED_HOSTS)'));
  };
}
