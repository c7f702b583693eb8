// Helpers for the gateway's end-to-end tests and benchmark: real MCP servers from npm
// (server-everything, server-memory), the SDK's real Client, raw HTTP for what a
// well-behaved client never sends, and a recording proxy to prove what reaches an upstream.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type ClientCapabilities,
  type CreateMessageRequest,
  type CreateMessageResult,
  type ElicitRequest,
  type LoggingMessageNotification,
} from '@modelcontextprotocol/sdk/types.js';
import { grant, type api } from './server.ts';

type Api = ReturnType<typeof api>;

const require = createRequire(import.meta.url);

function binOf(pkg: string): string {
  const manifest = require.resolve(`${pkg}/package.json`);
  const { bin } = require(manifest) as { bin: string | Record<string, string> };
  const rel = typeof bin === 'string' ? bin : Object.values(bin)[0]!;
  return path.join(path.dirname(manifest), rel);
}

/** `mcp-server-everything` (argv[2]: `stdio` or `streamableHttp`). */
export const EVERYTHING_BIN = binOf('@modelcontextprotocol/server-everything');
/** `mcp-server-memory` (stdio; its graph lives in the file named by MEMORY_FILE_PATH). */
export const MEMORY_BIN = binOf('@modelcontextprotocol/server-memory');

/**
 * Server environment that turns the per-IP, per-user and per-server rate limits off: these
 * tests and the benchmark send hundreds of messages a minute from 127.0.0.1 on purpose.
 */
export const NO_RATE_LIMITS = {
  RATE_LIMIT_IP_PER_MINUTE: '0',
  RATE_LIMIT_USER_PER_MINUTE: '0',
  RATE_LIMIT_USER_SERVER_PER_MINUTE: '0',
} as const;

/** The roots every test client offers (server-everything's `get-roots-list` echoes them). */
export const ROOTS = [{ uri: 'file:///tmp/gateway-e2e-root', name: 'gateway-e2e-root' }];

/** What the sampling handler answers unless a test overrides it. */
export const SAMPLED: CreateMessageResult = {
  model: 'gateway-test-model',
  role: 'assistant',
  content: { type: 'text', text: 'sampled-by-test-client' },
  stopReason: 'endTurn',
};

/** Text of the i-th content block of a tool result. */
export function text(result: unknown, i = 0): string {
  const block = (result as CallToolResult).content[i];
  if (!block || block.type !== 'text') throw new Error(`content[${i}] is not text: ${JSON.stringify(block)}`);
  return block.text;
}

/** Polls `fn` until it returns something truthy; fails naming `what` after `timeoutMs`. */
export async function waitFor<T>(
  fn: () => T | undefined | null | false,
  what: string,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

// --- server definitions for POST /api/servers ---------------------------------------------

/** server-everything over stdio, launched by the gateway. */
export function everythingStdio(slug: string, extra: Record<string, unknown> = {}) {
  return {
    slug,
    name: `everything (stdio) ${slug}`,
    transport: { type: 'stdio', command: process.execPath, args: [EVERYTHING_BIN, 'stdio'], env: {} },
    ...extra,
  };
}

/** A remote Streamable HTTP server at `url`. */
export function remoteHttp(slug: string, url: string | URL, extra: Record<string, unknown> = {}) {
  return {
    slug,
    name: `remote ${slug}`,
    transport: { type: 'streamable-http', url: String(url), headers: {} },
    ...extra,
  };
}

/** server-memory over stdio, keeping its graph in `file`. */
export function memoryStdio(slug: string, file: string) {
  return {
    slug,
    name: `memory ${slug}`,
    transport: {
      type: 'stdio',
      command: process.execPath,
      args: [MEMORY_BIN],
      env: { MEMORY_FILE_PATH: file },
    },
  };
}

/**
 * Registers a server as admin (which runs capability discovery) and grants it to everyone,
 * so that user-role keys may use it; throws with the response body unless created.
 */
export async function registerServer(admin: Api, body: { slug: string }): Promise<Record<string, unknown>> {
  const res = await admin.post('/api/servers', body);
  if (res.status !== 201) {
    throw new Error(`POST /api/servers ${body.slug}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  }
  await grant(admin, body.slug);
  return res.body as Record<string, unknown>;
}

/** An audit event as GET /api/audit shows it (the fields the tests look at). */
export interface AuditEvent {
  at: string;
  category: string;
  action: string;
  status: 'ok' | 'error' | 'denied';
  userId: string | null;
  serverSlug: string | null;
  toolName: string | null;
  resourceUri: string | null;
  sessionId: string | null;
  apiKeyId: string | null;
  clientName: string | null;
  error: string | null;
  details: unknown;
}

/** Audit events recorded at or after `since`, newest first (query: extra filters). */
export async function auditSince(
  admin: Api,
  since: Date,
  query: Record<string, string> = {},
): Promise<AuditEvent[]> {
  const qs = new URLSearchParams({ from: since.toISOString(), limit: '500', ...query });
  const res = await admin.get(`/api/audit?${qs.toString()}`);
  if (res.status !== 200) throw new Error(`GET /api/audit: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  return (res.body as { events: AuditEvent[] }).events;
}

/** Waits (audit writes are batched) until an event recorded since `since` matches. */
export async function waitForAudit(
  admin: Api,
  since: Date,
  match: (e: AuditEvent) => boolean,
  what: string,
  query: Record<string, string> = {},
): Promise<AuditEvent> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const events = await auditSince(admin, since, query);
    const found = events.find(match);
    if (found) return found;
    if (Date.now() > deadline) {
      throw new Error(
        `no audit event for ${what} since ${since.toISOString()}; got ${JSON.stringify(events)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

// --- the SDK client -------------------------------------------------------------------------

/** What the server sent the client on its own, collected for assertions. */
export interface ClientEvents {
  logs: LoggingMessageNotification['params'][];
  resourceUpdates: string[];
  toolListChanged: number;
  resourceListChanged: number;
  promptListChanged: number;
  samplingRequests: CreateMessageRequest['params'][];
  elicitations: ElicitRequest['params'][];
  rootsRequests: number;
  errors: Error[];
}

export interface McpConnection {
  readonly client: Client;
  readonly transport: StreamableHTTPClientTransport;
  readonly events: ClientEvents;
  /** DELETEs the session (best effort) and closes the client. */
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** Defaults to sampling, form elicitation and roots, so server-everything registers its gated tools. */
  capabilities?: ClientCapabilities;
  sampling?: (params: CreateMessageRequest['params']) => Promise<CreateMessageResult>;
  clientName?: string;
}

/**
 * The SDK's real `Client` over Streamable HTTP to `url`, authenticated with `key` as a
 * bearer token, answering sampling, elicitation and roots requests like a real host would.
 */
export async function connectMcp(
  url: string | URL,
  key: string | undefined,
  options: ConnectOptions = {},
): Promise<McpConnection> {
  const events: ClientEvents = {
    logs: [],
    resourceUpdates: [],
    toolListChanged: 0,
    resourceListChanged: 0,
    promptListChanged: 0,
    samplingRequests: [],
    elicitations: [],
    rootsRequests: 0,
    errors: [],
  };
  const client = new Client(
    { name: options.clientName ?? 'gateway-e2e-client', version: '1.0.0' },
    {
      capabilities: options.capabilities ?? {
        sampling: {},
        elicitation: { form: {} },
        roots: { listChanged: true },
      },
    },
  );
  client.onerror = (e) => void events.errors.push(e);
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void events.logs.push(n.params));
  client.setNotificationHandler(
    ResourceUpdatedNotificationSchema,
    (n) => void events.resourceUpdates.push(n.params.uri),
  );
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => void events.toolListChanged++);
  client.setNotificationHandler(
    ResourceListChangedNotificationSchema,
    () => void events.resourceListChanged++,
  );
  client.setNotificationHandler(PromptListChangedNotificationSchema, () => void events.promptListChanged++);
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    events.samplingRequests.push(req.params);
    return options.sampling ? options.sampling(req.params) : SAMPLED;
  });
  client.setRequestHandler(ElicitRequestSchema, (req) => {
    events.elicitations.push(req.params);
    return { action: 'accept', content: { name: 'Ada Lovelace', check: true, integer: 7 } };
  });
  client.setRequestHandler(ListRootsRequestSchema, () => {
    events.rootsRequests++;
    return { roots: ROOTS };
  });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: key ? { headers: { Authorization: `Bearer ${key}` } } : {},
  });
  await client.connect(transport);
  return {
    client,
    transport,
    events,
    async close() {
      await transport.terminateSession().catch(() => {});
      await client.close().catch(() => {});
    },
  };
}

// --- raw HTTP -------------------------------------------------------------------------------

export const MCP_ACCEPT = 'application/json, text/event-stream';

/** A JSON-RPC initialize request body. */
export function initializeRequest(id: number | string = 1, clientName = 'raw-client') {
  return {
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: clientName, version: '0' },
    },
  };
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The JSON body, or the first SSE `data:` message; undefined when neither parses. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON-RPC
  json: any;
}

/** One HTTP request to an MCP endpoint, as a misbehaving or hostile client might send it. */
export async function rawMcp(
  url: string,
  options: {
    method?: string;
    key?: string | undefined;
    sessionId?: string | undefined;
    body?: unknown;
    /** Sent as is (not JSON-encoded) when a string. */
    rawBody?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<RawResponse> {
  const method = options.method ?? 'POST';
  const headers: Record<string, string> = {
    accept: MCP_ACCEPT,
    'mcp-protocol-version': '2025-11-25',
    ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
    ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
    ...(options.sessionId ? { 'mcp-session-id': options.sessionId } : {}),
    ...options.headers,
  };
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
  const raw = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    const data = raw.split('\n').find((l) => l.startsWith('data: '));
    try {
      json = data ? JSON.parse(data.slice(6)) : undefined;
    } catch {
      json = undefined;
    }
  }
  return { status: res.status, headers: res.headers, text: raw, json };
}

// --- upstream processes ---------------------------------------------------------------------

export interface EverythingHttp {
  readonly url: URL;
  readonly port: number;
  readonly proc: ChildProcess;
  /** SIGKILLs the process and waits for its exit. */
  stop(): Promise<void>;
}

/**
 * `mcp-server-everything streamableHttp` as a child process, on `port` (to restart a killed
 * one at the same address) or a free port. It logs "listening on port N" to stderr.
 */
export async function startEverythingHttp(port?: number): Promise<EverythingHttp> {
  const listenPort = port ?? (await freePort());
  const proc = spawn(process.execPath, [EVERYTHING_BIN, 'streamableHttp'], {
    env: { PORT: String(listenPort) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`server-everything did not start: ${stderr}`)), 15_000);
    proc.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('listening on port')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server-everything exited (${code}) before listening: ${stderr}`));
    });
  });
  return {
    url: new URL(`http://127.0.0.1:${listenPort}/mcp`),
    port: listenPort,
    proc,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** One request that reached the upstream through a recording proxy. */
export interface ProxiedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RecordingProxy {
  readonly url: URL;
  /** Every request forwarded so far, in arrival order. */
  readonly requests: ProxiedRequest[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of `target` that records every request (headers and body) before
 * forwarding it, streaming the answer back (SSE included). Registered as the upstream, it
 * shows exactly what the gateway sent: which credentials, and whether a message got through.
 */
export async function startRecordingProxy(target: URL): Promise<RecordingProxy> {
  const requests: ProxiedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    const record: ProxiedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body: '',
    };
    requests.push(record);
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: req.url,
        method: req.method,
        headers: { ...req.headers, host: target.host },
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    res.on('close', () => upstream.destroy());
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      upstream.write(c);
    });
    req.on('end', () => {
      record.body = Buffer.concat(chunks).toString();
      upstream.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}${target.pathname}`),
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
