// Fixtures of the SSRF guard's unit tests: the policies they use and scripted DNS.
import type { LookupFn, SsrfPolicy } from '../../server/src/platform/net/ssrf.policy.ts';

/** Production defaults: no loopback, no private ranges, no allow-list. */
export const strict: SsrfPolicy = { allowLoopback: false, allowPrivate: false, allowList: [] };
/** Development: loopback allowed (UPSTREAM_ALLOW_LOOPBACK). */
export const dev: SsrfPolicy = { ...strict, allowLoopback: true };

/** Any DNS lookup a test did not script is a failure, never real network. */
export const noDns: LookupFn = (hostname) =>
  Promise.reject(new Error(`unexpected DNS lookup of ${hostname}`));

/** DNS answering from `table` only, recording every name asked in `calls`. */
export function dns(table: Record<string, string[]>, calls: string[] = []): LookupFn {
  return (hostname) => {
    calls.push(hostname);
    const addresses = table[hostname];
    if (addresses === undefined) {
      return Promise.reject(new Error(`unexpected DNS lookup of ${hostname}`));
    }
    return Promise.resolve(addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
}
