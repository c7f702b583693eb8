// The gateway's protocol guarantees, each with the end-to-end test that proves it. Like the
// MCP SDK's own list of required behaviours: a guarantee without a test is a wish. The test
// "every gateway requirement names an existing test" (gateway.test.ts) fails when a named
// test is renamed, skipped or removed. Tests in a `describe.each` run for every transport.

/** One protocol guarantee and its proof. */
export interface Requirement {
  /** Stable identifier, for issues and code comments. */
  readonly id: string;
  /** What a client may rely on, in one sentence. */
  readonly guarantee: string;
  /** The file under test/e2e/ holding the proof. */
  readonly file:
    | 'gateway.test.ts'
    | 'gateway-aggregate.test.ts'
    | 'gateway-security.test.ts'
    | 'live-authz.test.ts'
    | 'session-limits.test.ts'
    | 'gateway-transport.test.ts';
  /** The title of the test (its `it(...)` string) that fails when the guarantee breaks. */
  readonly test: string;
}

export const REQUIREMENTS: readonly Requirement[] = [
  // --- /mcp/{slug}: the upstream, relayed unchanged (stdio and Streamable HTTP upstreams) ---
  {
    id: 'server-initialize',
    guarantee: "On /mcp/{slug}, initialize returns the upstream's serverInfo and capabilities.",
    file: 'gateway.test.ts',
    test: 'initialize relays the upstream server info and capabilities',
  },
  {
    id: 'server-client-capabilities',
    guarantee: "The upstream sees the client's capabilities (sampling, elicitation, roots).",
    file: 'gateway.test.ts',
    test: 'tools/list includes the tools the upstream registers for the client capabilities',
  },
  {
    id: 'server-tools-call',
    guarantee: 'tools/call results pass through, including isError results.',
    file: 'gateway.test.ts',
    test: 'tools/call returns text results, and invalid arguments as an isError result',
  },
  {
    id: 'server-errors',
    guarantee: 'Upstream error results and JSON-RPC errors reach the client as the upstream sent them.',
    file: 'gateway.test.ts',
    test: "an unknown tool gets the upstream's error result, an unknown method a JSON-RPC error",
  },
  {
    id: 'server-large-messages',
    guarantee: 'Messages of 1 MB pass in both directions.',
    file: 'gateway.test.ts',
    test: 'large messages (1 MB each way) pass through',
  },
  {
    id: 'server-image-content',
    guarantee: 'Image content blocks pass through intact.',
    file: 'gateway.test.ts',
    test: 'image content passes through (get-tiny-image)',
  },
  {
    id: 'server-embedded-resource',
    guarantee: 'Embedded resource content blocks pass through intact.',
    file: 'gateway.test.ts',
    test: 'embedded resource content passes through (get-resource-reference)',
  },
  {
    id: 'server-progress',
    guarantee: 'Progress notifications reach the caller in order and before the result.',
    file: 'gateway.test.ts',
    test: 'progress notifications reach onprogress in order, before the result',
  },
  {
    id: 'server-cancellation',
    guarantee: 'A cancelled request ends for the client, nothing of it arrives later, the session lives on.',
    file: 'gateway.test.ts',
    test: 'cancellation: an aborted call rejects, its late progress is dropped, the session keeps working',
  },
  {
    id: 'server-logging',
    guarantee: 'logging/setLevel reaches the upstream and its log notifications reach the client.',
    file: 'gateway.test.ts',
    test: 'logging: setLoggingLevel, then simulated log messages reach the client',
  },
  {
    id: 'server-resources',
    guarantee: 'resources/list, resources/templates/list and resources/read pass through.',
    file: 'gateway.test.ts',
    test: 'resources: list, templates and read; an unknown resource is a JSON-RPC error',
  },
  {
    id: 'server-subscriptions',
    guarantee: 'resources/subscribe reaches the upstream and resources/updated reaches the client.',
    file: 'gateway.test.ts',
    test: 'resources/subscribe: updates for the subscribed URI reach the client',
  },
  {
    id: 'server-list-changed',
    guarantee: 'list_changed notifications reach the client.',
    file: 'gateway.test.ts',
    test: 'resources/list_changed reaches the client when gzip-file-as-resource adds a resource',
  },
  {
    id: 'server-prompts',
    guarantee: 'prompts/list and prompts/get pass through.',
    file: 'gateway.test.ts',
    test: 'prompts: list and get',
  },
  {
    id: 'server-completion',
    guarantee: 'completion/complete passes through for prompt and resource-template refs.',
    file: 'gateway.test.ts',
    test: 'completion: prompt arguments (with context) and resource template variables',
  },
  {
    id: 'server-sampling',
    guarantee: "The upstream's sampling/createMessage reaches the client and its answer returns.",
    file: 'gateway.test.ts',
    test: "sampling: the upstream's sampling/createMessage is answered by the client",
  },
  {
    id: 'server-elicitation',
    guarantee: "The upstream's elicitation/create reaches the client and its answer returns.",
    file: 'gateway.test.ts',
    test: "elicitation: the upstream's elicitation/create is answered by the client",
  },
  {
    id: 'server-roots',
    guarantee:
      "The upstream's roots/list is answered by the client; roots/list_changed reaches the upstream.",
    file: 'gateway.test.ts',
    test: "roots: the upstream's roots/list is answered by the client; list_changed triggers a re-fetch",
  },
  {
    id: 'server-concurrency',
    guarantee: 'Concurrent requests on one session each get their own response.',
    file: 'gateway.test.ts',
    test: 'concurrent calls on one session each get their own result',
  },
  {
    id: 'server-ping',
    guarantee: 'ping is answered.',
    file: 'gateway.test.ts',
    test: 'ping is answered',
  },
  {
    id: 'server-no-protocol-errors',
    guarantee: 'The client never receives a message it cannot match (unknown ids, unknown progress tokens).',
    file: 'gateway.test.ts',
    test: 'no protocol errors reached the client during the session',
  },
  {
    id: 'audit-tools-call',
    guarantee: 'Every tools/call is audited with method, tool, server, user and status.',
    file: 'gateway.test.ts',
    test: 'tools/call is audited with the method, tool, server, user and status',
  },
  {
    id: 'server-memory',
    guarantee: 'A second real server (server-memory) works through the gateway, state included.',
    file: 'gateway.test.ts',
    test: 'create_entities then read_graph round-trips through /mcp/{slug}',
  },
  {
    id: 'credential-isolation',
    guarantee:
      'Each user gets their own upstream process with their own credential, never another user\u2019s.',
    file: 'gateway.test.ts',
    test: 'two users on the same stdio server each see only their own credential',
  },
  {
    id: 'upstream-crash-recovery',
    guarantee:
      'An upstream dying mid-call fails that call promptly with a JSON-RPC error; the session recovers once the upstream is back.',
    file: 'gateway.test.ts',
    test: 'an upstream killed mid-call fails the call with a JSON-RPC error; after a restart the session works again',
  },
  // --- /mcp: the aggregate endpoint ---
  {
    id: 'aggregate-initialize',
    guarantee: 'The aggregate endpoint answers initialize itself, as mcp-gateway.',
    file: 'gateway-aggregate.test.ts',
    test: 'initialize is answered by the gateway itself',
  },
  {
    id: 'aggregate-tool-names',
    guarantee: 'tools/list merges every usable server, names prefixed {slug}__, schemas unchanged.',
    file: 'gateway-aggregate.test.ts',
    test: 'tools/list merges every server the caller may use under {slug}__{name}',
  },
  {
    id: 'aggregate-resource-uris',
    guarantee: 'Resource URIs and templates are listed as gw+{slug}:{original}.',
    file: 'gateway-aggregate.test.ts',
    test: 'resources and resource templates are listed under gw+{slug}: URIs',
  },
  {
    id: 'aggregate-prompt-names',
    guarantee: 'Prompts are listed as {slug}__{name}.',
    file: 'gateway-aggregate.test.ts',
    test: 'prompts are listed under {slug}__{name}',
  },
  {
    id: 'aggregate-unknown-tool',
    guarantee: 'A tool name that names no usable server is a JSON-RPC error (-32602).',
    file: 'gateway-aggregate.test.ts',
    test: 'a tool name that names no server is a JSON-RPC error (-32602)',
  },
  {
    id: 'aggregate-memory',
    guarantee: 'server-memory works through the aggregate endpoint.',
    file: 'gateway-aggregate.test.ts',
    test: 'server-memory: create_entities then read_graph round-trips through /mcp',
  },
  {
    id: 'aggregate-tools-call',
    guarantee: 'tools/call by {slug}__{name} reaches that server; results and isError results come back.',
    file: 'gateway-aggregate.test.ts',
    test: 'tools/call through {slug}__{name}: text results and isError results',
  },
  {
    id: 'aggregate-image-content',
    guarantee: 'Image content blocks pass through the aggregate endpoint intact.',
    file: 'gateway-aggregate.test.ts',
    test: 'image content passes through (get-tiny-image)',
  },
  {
    id: 'aggregate-embedded-resource',
    guarantee: 'Embedded resource content passes through the aggregate endpoint.',
    file: 'gateway-aggregate.test.ts',
    test: 'embedded resource content passes through (get-resource-reference)',
  },
  {
    id: 'aggregate-progress',
    guarantee: 'Progress reaches the caller in order and before the result on the aggregate endpoint.',
    file: 'gateway-aggregate.test.ts',
    test: 'progress notifications reach onprogress in order, before the result',
  },
  {
    id: 'aggregate-cancellation',
    guarantee: 'Cancellation reaches the right upstream; the aggregate session lives on.',
    file: 'gateway-aggregate.test.ts',
    test: 'cancellation: an aborted call rejects, its late progress is dropped, the session keeps working',
  },
  {
    id: 'aggregate-logging',
    guarantee: 'logging/setLevel fans out and log notifications reach the client.',
    file: 'gateway-aggregate.test.ts',
    test: 'logging: setLoggingLevel, then simulated log messages reach the client',
  },
  {
    id: 'aggregate-resources-read',
    guarantee: 'resources/read by mapped URI reaches the right server and answers under the mapped URI.',
    file: 'gateway-aggregate.test.ts',
    test: 'resources: read through the mapped URI; an unknown resource is a JSON-RPC error',
  },
  {
    id: 'aggregate-subscriptions',
    guarantee: 'Subscriptions use mapped URIs and resources/updated carries the mapped URI.',
    file: 'gateway-aggregate.test.ts',
    test: 'resources/subscribe with a mapped URI: the update names the mapped URI',
  },
  {
    id: 'aggregate-list-changed',
    guarantee: 'list_changed from any upstream reaches the aggregate client.',
    file: 'gateway-aggregate.test.ts',
    test: 'resources/list_changed reaches the client; the new resource reads through its mapped URI',
  },
  {
    id: 'aggregate-prompts-get',
    guarantee: 'prompts/get by {slug}__{name} reaches that server.',
    file: 'gateway-aggregate.test.ts',
    test: 'prompts/get through {slug}__{name}',
  },
  {
    id: 'aggregate-completion',
    guarantee: 'completion/complete accepts mapped prompt names and template URIs.',
    file: 'gateway-aggregate.test.ts',
    test: 'completion: refs use the mapped prompt names and template URIs',
  },
  {
    id: 'aggregate-sampling',
    guarantee: 'Sampling requests from any upstream reach the aggregate client.',
    file: 'gateway-aggregate.test.ts',
    test: "sampling: the upstream's sampling/createMessage is answered by the client",
  },
  {
    id: 'aggregate-elicitation',
    guarantee: 'Elicitation requests from any upstream reach the aggregate client.',
    file: 'gateway-aggregate.test.ts',
    test: "elicitation: the upstream's elicitation/create is answered by the client",
  },
  {
    id: 'aggregate-roots',
    guarantee: "Upstreams behind the aggregate endpoint get the client's roots.",
    file: 'gateway-aggregate.test.ts',
    test: "roots: the upstream's roots/list is answered with the client's roots",
  },
  {
    id: 'aggregate-audit',
    guarantee: 'Calls through the aggregate endpoint are audited under the upstream server.',
    file: 'gateway-aggregate.test.ts',
    test: "tools/call is audited under the upstream server's slug",
  },
  {
    id: 'aggregate-scope',
    guarantee: "The aggregate endpoint shows and routes to only the servers the caller's key may use.",
    file: 'gateway-aggregate.test.ts',
    test: 'a key scoped to one server sees only that server',
  },
  {
    id: 'aggregate-down-upstream',
    guarantee: 'An upstream that is down is left out; the aggregate endpoint keeps serving the others.',
    file: 'gateway-aggregate.test.ts',
    test: 'an upstream that is down is left out of the lists; the others still answer',
  },
  // --- refusals: answered by the gateway, audited, never forwarded ---
  {
    id: 'auth-missing',
    guarantee: 'A request without a key gets 401 with a Bearer challenge and is audited.',
    file: 'gateway-security.test.ts',
    test: 'a request without a key gets 401 with a Bearer challenge, on /mcp/{slug} and /mcp',
  },
  {
    id: 'auth-invalid',
    guarantee: 'Unknown, revoked and expired keys get 401; a revoked key stops working mid-session.',
    file: 'gateway-security.test.ts',
    test: 'an unknown, a revoked or an expired key gets 401 with error="invalid_token"',
  },
  {
    id: 'auth-scope',
    guarantee: 'A key scoped to other servers gets 403 on /mcp/{slug}.',
    file: 'gateway-security.test.ts',
    test: 'a key scoped to another server gets 403 on /mcp/{slug}',
  },
  {
    id: 'unknown-server',
    guarantee: 'An unknown server slug is 404.',
    file: 'gateway-security.test.ts',
    test: 'an unknown server is 404',
  },
  {
    id: 'unknown-session',
    guarantee: 'An unknown or ended Mcp-Session-Id is 404 with a JSON-RPC error body (POST, GET, DELETE).',
    file: 'gateway-security.test.ts',
    test: 'an unknown or ended Mcp-Session-Id is 404 with a JSON-RPC error body',
  },
  {
    id: 'session-binding',
    guarantee: "A session cannot be used with another user's key.",
    file: 'gateway-security.test.ts',
    test: "another user's key cannot use a session",
  },
  {
    id: 'origin',
    guarantee: 'A foreign Origin is 403; configured origins are allowed.',
    file: 'gateway-security.test.ts',
    test: 'a foreign Origin is refused with 403; an allowed Origin is accepted',
  },
  {
    id: 'body-limit',
    guarantee: 'A body over the configured limit is 413.',
    file: 'gateway-security.test.ts',
    test: 'a body over the size limit is refused with 413',
  },
  {
    id: 'parse-error',
    guarantee: 'Malformed JSON is answered with JSON-RPC -32700 (HTTP 400).',
    file: 'gateway-security.test.ts',
    test: 'malformed JSON is a JSON-RPC parse error (-32700)',
  },
  {
    id: 'invalid-request',
    guarantee: 'A body that is not JSON-RPC is answered with -32600 and HTTP 400; the session is unharmed.',
    file: 'gateway-security.test.ts',
    test: 'a body that is not JSON-RPC is an invalid request (-32600) with HTTP 400',
  },
  {
    id: 'token-stripping',
    guarantee:
      "The client's key never reaches an upstream; the user's upstream credential is injected instead.",
    file: 'gateway-security.test.ts',
    test: "the client's key never reaches the upstream; the user's upstream credential does",
  },
  {
    id: 'live-role',
    guarantee:
      "A user's lowered role applies at once to sessions already open: /mcp/{slug} sessions of servers it no longer reaches end (404), /mcp drops them with list_changed.",
    file: 'live-authz.test.ts',
    test: 'an admin demoted to user loses admin-only servers on sessions already open',
  },
  {
    id: 'live-rules-every-method',
    guarantee:
      'A deleted rule refuses every method of that server (lists, reads, prompts, subscriptions) on open sessions of both endpoints.',
    file: 'live-authz.test.ts',
    test: 'a deleted rule ends the per-server session and trims the aggregate one, every method',
  },
  {
    id: 'rule-items',
    guarantee: 'A rule that names tools grants no prompts or resources: they are neither listed nor served.',
    file: 'live-authz.test.ts',
    test: 'a tool-limited rule hides and refuses every other tool, prompt and resource, on both endpoints',
  },
  {
    id: 'session-limits',
    guarantee:
      'New sessions over a per-user limit get HTTP 429, over a total limit 503, with a JSON-RPC error and an audit event.',
    file: 'session-limits.test.ts',
    test: 'refuses a user past their own limits with 429, and everyone past the totals with 503',
  },
  {
    id: 'json-or-sse',
    guarantee:
      'A POST with one request is answered with application/json unless a message for it precedes the response; then (and for a batch) with an SSE stream carrying them in order.',
    file: 'gateway-transport.test.ts',
    test: 'streams progress before the result as SSE on the request own response',
  },
];
