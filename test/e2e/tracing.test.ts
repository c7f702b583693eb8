// OpenTelemetry tracing end to end: an OTLP/HTTP receiver in the test collects what the
// gateway exports. An SDK client's tools/call (continuing the client's traceparent) and a
// chat turn with its tool call each form one trace with the gateway's stage spans; the
// remote upstream receives the trace's traceparent; no span carries an argument value.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectChat } from '../support/chat.ts';
import { startFakeModel } from '../support/llm.ts';
import {
  NO_RATE_LIMITS,
  registerServer,
  remoteHttp,
  startEverythingHttp,
  startRecordingProxy,
  text,
  waitForAudit,
  type EverythingHttp,
  type RecordingProxy,
} from '../support/mcp.ts';
import { createUserKey, grant, useServer } from '../support/server.ts';

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: { key: string; value: OtlpValue }[];
}

/** A minimal OTLP/HTTP JSON receiver: POST /v1/traces, every span kept (and the raw bodies). */
async function startOtlpReceiver() {
  const spans: OtlpSpan[] = [];
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const raw = Buffer.concat(chunks).toString();
      bodies.push(raw);
      const body = JSON.parse(raw) as {
        resourceSpans?: { scopeSpans?: { spans?: OtlpSpan[] }[] }[];
      };
      for (const rs of body.resourceSpans ?? [])
        for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    bodies,
    close: () => new Promise((r) => server.close(r)),
  };
}

const attr = (span: OtlpSpan, key: string) => {
  const v = span.attributes?.find((a) => a.key === key)?.value;
  return v?.stringValue ?? v?.boolValue ?? (v?.intValue === undefined ? undefined : Number(v.intValue));
};

const receiver = await startOtlpReceiver();
const model = await startFakeModel();
const ctx = useServer('pglite', {
  ...NO_RATE_LIMITS,
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  OTEL_SERVICE_NAME: 'gateway-under-test',
  OTEL_BSP_SCHEDULE_DELAY: '50',
  OPENAI_BASE_URL: model.baseUrl,
  OPENAI_API_KEY: 'sk-model-key-for-the-gateway-0123456789',
  CHAT_MODEL: 'scripted-model',
});

/** Argument values that must appear in no exported span. */
const CANARY = 'canary-argument-7f3e9b21-never-in-a-span';
const CHAT_CANARY = 'chat-canary-argument-5d1c0a44';
const UPSTREAM_SECRET = 'upstream-header-secret-0123456789';

let everything: EverythingHttp;
let proxy: RecordingProxy;
let user: Awaited<ReturnType<typeof createUserKey>>;

beforeAll(async () => {
  everything = await startEverythingHttp();
  proxy = await startRecordingProxy(everything.url);
  const server = remoteHttp('remote', proxy.url);
  server.transport.headers = { 'x-upstream-key': UPSTREAM_SECRET } as never;
  await registerServer(ctx.admin, server);
  await grant(ctx.admin, 'remote');
  user = await createUserKey(ctx.server, 'tracer');
});

afterAll(async () => {
  await proxy?.close();
  await everything?.stop();
  await model.close();
  await receiver.close();
});

/** Polls `fn` (flushing the gateway's spans first) until it returns something. */
async function eventually<T>(fn: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    await ctx.server.flushTraces();
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The spans of one trace, once the gateway exported the one named `last`. */
async function traceOf(traceId: string, last: (s: OtlpSpan) => boolean): Promise<OtlpSpan[]> {
  await eventually(
    () => (receiver.spans.some((s) => s.traceId === traceId && last(s)) ? true : undefined),
    `the spans of trace ${traceId}`,
  );
  return receiver.spans.filter((s) => s.traceId === traceId);
}

/** traceparent headers the upstream received for requests whose body holds `needle`. */
const upstreamTraceparents = (needle: string) =>
  proxy.requests.filter((r) => r.body.includes(needle)).map((r) => r.headers['traceparent']);

describe('tracing (OTEL_EXPORTER_OTLP_ENDPOINT set)', () => {
  it('an SDK client’s tools/call is one trace: continues the client’s traceparent, stage spans, upstream gets it', async () => {
    const clientTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const clientSpanId = '00f067aa0ba902b7';
    // The client sends its traceparent with the tools/call only, as an instrumented host would.
    const tracingFetch: typeof fetch = (input, init) => {
      const headers = new Headers(init?.headers);
      if (typeof init?.body === 'string' && init.body.includes('"tools/call"'))
        headers.set('traceparent', `00-${clientTraceId}-${clientSpanId}-01`);
      return fetch(input, { ...init, headers });
    };
    const client = new Client({ name: 'traced-client', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${ctx.server.url}/mcp/remote`), {
      requestInit: { headers: { Authorization: `Bearer ${user.key}` } },
      fetch: tracingFetch,
    });
    await client.connect(transport);
    const sessionId = transport.sessionId;
    const since = new Date();
    try {
      const result = (await client.callTool({
        name: 'echo',
        arguments: { message: CANARY },
      })) as CallToolResult;
      expect(text(result)).toContain(CANARY);
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }

    const spans = await traceOf(clientTraceId, (s) => s.name === 'tools/call echo');
    const request = spans.find((s) => s.name === 'tools/call echo')!;
    expect(request.parentSpanId).toBe(clientSpanId);
    expect(attr(request, 'mcp.method.name')).toBe('tools/call');
    expect(attr(request, 'gen_ai.tool.name')).toBe('echo');
    expect(attr(request, 'mcp_gateway.server')).toBe('remote');
    expect(attr(request, 'user.id')).toBe(user.user.id);
    expect(attr(request, 'mcp.session.id')).toBe(sessionId);
    expect(attr(request, 'http.response.status_code')).toBe(200);

    const byName = (name: string) => spans.find((s) => s.name === name);
    for (const stage of ['mcp.auth', 'mcp.rate_limit', 'mcp.policy'])
      expect(byName(stage)?.parentSpanId, stage).toBe(request.spanId);
    expect(attr(byName('mcp.policy')!, 'mcp_gateway.decision')).toBe('allow');
    const upstream = byName('mcp.upstream tools/call echo')!;
    expect(upstream.parentSpanId).toBe(request.spanId);
    expect(attr(upstream, 'mcp_gateway.outcome')).toBe('answered');
    expect(byName('mcp.audit')?.parentSpanId).toBe(upstream.spanId);

    // The remote upstream continues the trace under the gateway's upstream-call span.
    expect(upstreamTraceparents(CANARY)).toEqual([`00-${clientTraceId}-${upstream.spanId}-01`]);

    // The audit event names the trace.
    const event = await waitForAudit(
      ctx.admin,
      since,
      (e) => e.action === 'tools/call' && e.serverSlug === 'remote',
      'the audit event of the call',
    );
    expect((event as unknown as { traceId: string }).traceId).toBe(clientTraceId);
    // The trace id is part of the hashed record, and the chain still verifies with it.
    const verify = await ctx.admin.post('/api/audit/verify');
    expect(verify.body).toMatchObject({ ok: true, broken: null });

    // The session's initialize (its own trace) shows the upstream being brought up.
    await eventually(
      () =>
        receiver.spans.find(
          (s) => s.name === 'mcp.upstream.connect' && attr(s, 'mcp_gateway.server') === 'remote',
        ),
      'the upstream connect span',
    );
  });

  it('a chat turn and its tool call are one trace that reaches the upstream', async () => {
    const thread = (await user.client.post('/api/threads', {})).body as { id: string };
    model.script(
      { toolCalls: [{ name: 'remote__echo', arguments: { message: CHAT_CANARY } }] },
      { text: 'Done.' },
    );
    const chat = await connectChat(ctx.server.url, user.key);
    try {
      expect(await chat.socket.emitWithAck('thread:join', { threadId: thread.id })).toEqual({ ok: true });
      await chat.socket.emitWithAck('message:send', { threadId: thread.id, text: 'Echo something' });
      await chat.next((e) => e.name === 'run:state' && e.body.running === false, 'the end of the turn');
    } finally {
      chat.socket.close();
    }
    const turn = await eventually(
      () => receiver.spans.find((s) => s.name === 'chat.turn' && attr(s, 'mcp_gateway.thread') === thread.id),
      'the chat turn span',
    );
    expect(attr(turn, 'mcp_gateway.outcome')).toBe('done');
    const spans = await traceOf(turn.traceId, (s) => s.name === 'mcp.upstream tools/call echo');
    const call = spans.find((s) => s.name === 'chat.tool_call')!;
    expect(call.parentSpanId).toBe(turn.spanId);
    expect(attr(call, 'gen_ai.tool.name')).toBe('remote__echo');
    const upstream = spans.find((s) => s.name === 'mcp.upstream tools/call echo')!;
    const policy = spans.find((s) => s.name === 'mcp.policy' && attr(s, 'gen_ai.tool.name') === 'echo');
    expect(policy?.parentSpanId).toBe(call.spanId);
    expect(upstream.parentSpanId).toBe(call.spanId);
    expect(attr(upstream, 'mcp_gateway.server')).toBe('remote');
    expect(upstreamTraceparents(CHAT_CANARY)).toEqual([`00-${turn.traceId}-${upstream.spanId}-01`]);
  });

  it('no exported span holds an argument value or a secret', async () => {
    await ctx.server.flushTraces();
    const exported = receiver.bodies.join('\n');
    expect(exported.length).toBeGreaterThan(0);
    for (const value of [CANARY, CHAT_CANARY, UPSTREAM_SECRET, user.key])
      expect(exported).not.toContain(value);
  });
});
