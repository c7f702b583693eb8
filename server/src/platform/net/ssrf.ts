// The SSRF guard for every outbound connection the gateway makes on a user's or admin's behalf
// (remote MCP servers, OAuth discovery and token endpoints). A URL is checked when it is
// registered (`assertUrlAllowed`) and again on every connection and redirect
// (`createGuardedFetch`). The connection-time check runs inside the socket's DNS lookup, so the
// address that is checked is the address that is connected to: a host that answered with a
// public address at registration and a private one now (DNS rebinding) is still refused.
//
// ssrf.policy.ts holds the policy and the registration-time check, ssrf.fetch.ts the guarded
// fetch, ssrf.address.ts the classes of IP addresses.
export { assertUrlAllowed, SsrfError, type LookupFn, type SsrfPolicy } from './ssrf.policy.ts';
export { createGuardedFetch } from './ssrf.fetch.ts';
