import type { Request, RequestHandler, Response } from 'express';
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Principal } from '../../core/principal.ts';
import {
  activeContext,
  failSpan,
  inChildSpan,
  runInContext,
  setActiveAttributes,
  SpanKind,
  startChildSpan,
  startServerSpan,
  tracingEnabled,
  type Attributes,
  type Span,
} from '../../platform/telemetry/tracing.ts';
import type { RelayRequestTrace, RelayTracer, SettledRequest } from './relay.options.ts';

/**
 * The gateway's spans. One server span per MCP HTTP request (continuing the client's W3C
 * `traceparent`), with child spans for its stages: `mcp.auth`, `mcp.rate_limit`,
 * `mcp.policy`, `mcp.upstream.connect`, `mcp.upstream` (the call, a client span whose
 * context the remote upstream receives as `traceparent`) and `mcp.audit`.
 *
 * Attributes name who, where and what (user id, server, session, MCP method, tool name,
 * outcome), never an argument value, a result, or an error message (which may quote
 * either). Every function here returns its input unchanged, or does nothing, when
 * tracing is off.
 */

/** Semantic-convention names (OpenTelemetry MCP and gen-ai conventions) and the gateway's own. */
const ATTR = {
  method: 'mcp.method.name',
  session: 'mcp.session.id',
  tool: 'gen_ai.tool.name',
  user: 'user.id',
  server: 'mcp_gateway.server',
  outcome: 'mcp_gateway.outcome',
  rpcCode: 'rpc.response.status_code',
} as const;

const toolOf = (request: { method?: unknown; params?: unknown }): string | undefined => {
  if (request.method !== 'tools/call' && request.method !== 'prompts/get') return undefined;
  const name = (request.params as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' ? name : undefined;
};

/** Names what an HTTP request carried, once it is over (the body is parsed by then). */
function describeRequest(span: Span, req: Request, res: Response): void {
  const body: unknown = req.body;
  const first = (Array.isArray(body) ? body[0] : body) as { method?: unknown; params?: unknown } | undefined;
  const method = typeof first?.method === 'string' ? first.method : undefined;
  const tool = first ? toolOf(first) : undefined;
  const principal = res.locals['principal'] as Principal | undefined;
  const session = req.header('mcp-session-id') ?? res.getHeader('mcp-session-id');
  const attributes: Attributes = { 'http.response.status_code': res.statusCode };
  if (method) attributes[ATTR.method] = method;
  if (tool) attributes[ATTR.tool] = tool;
  if (principal) attributes[ATTR.user] = principal.userId;
  if (typeof session === 'string') attributes[ATTR.session] = session;
  span.setAttributes(attributes);
  if (method) span.updateName(tool ? `${method} ${tool}` : method);
  if (res.statusCode >= 500) failSpan(span, `http.${res.statusCode}`);
  else if (!res.writableFinished && !res.headersSent) span.setAttribute('error.type', 'aborted');
}

/**
 * The first handler on every MCP path: starts the request's span (a child of the
 * client's trace when it sent `traceparent`) and runs the rest of the request in it.
 */
export const traceMcpRequest: RequestHandler = (req, res, next) => {
  const slug = req.params['slug'] as string | undefined;
  const started = startServerSpan(`MCP ${req.method}`, req.headers, {
    'http.request.method': req.method,
    'http.route': slug === undefined ? '/mcp' : '/mcp/{slug}',
    ...(slug === undefined ? {} : { [ATTR.server]: slug }),
  });
  if (!started) return next();
  res.once('close', () => {
    describeRequest(started.span, req, res);
    started.span.end();
  });
  runInContext(started.context, next);
};

/**
 * Runs an express handler in a child span named `name`, ended when the handler passes the
 * request on (or answers it). What follows runs in the request's own span again.
 */
export function traceStage(name: string, handler: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const parent = tracingEnabled() ? activeContext() : undefined;
    const started = startChildSpan(name);
    if (!started) return handler(req, res, next);
    let ended = false;
    const end = (err?: unknown) => {
      if (ended) return;
      ended = true;
      if (err) failSpan(started.span, err);
      else if (res.statusCode >= 400) failSpan(started.span, `http.${res.statusCode}`);
      started.span.end();
    };
    res.once('close', () => end());
    return runInContext(started.context, () =>
      handler(req, res, (err?: unknown) => {
        end(err);
        runInContext(parent, () => next(err as never));
      }),
    );
  };
}

/** The rate limits (McpAdmission) as a `mcp.rate_limit` span (with `admitted`). */
export function traceAdmission<Args extends unknown[]>(
  admit: (...args: Args) => Promise<boolean>,
): (...args: Args) => Promise<boolean> {
  if (!tracingEnabled()) return admit;
  return (...args) =>
    inChildSpan('mcp.rate_limit', async () => {
      const admitted = await admit(...args);
      setActiveAttributes({ 'mcp_gateway.admitted': admitted });
      return admitted;
    });
}

/** A relay's policy hook as a `mcp.policy` span (with the decision). */
export function tracePolicy(
  authorize: (request: JSONRPCRequest) => { code: number; message: string } | undefined,
): (request: JSONRPCRequest) => { code: number; message: string } | undefined {
  if (!tracingEnabled()) return authorize;
  return (request) => {
    const started = startChildSpan('mcp.policy', { [ATTR.method]: request.method });
    if (!started) return authorize(request);
    const tool = toolOf(request);
    if (tool) started.span.setAttribute(ATTR.tool, tool);
    const denied = runInContext(started.context, () => authorize(request));
    started.span.setAttribute('mcp_gateway.decision', denied ? 'deny' : 'allow');
    started.span.end();
    return denied;
  };
}

/**
 * The relay's tracer for one session: `mcp.upstream.connect` around bringing the upstream
 * up, and `mcp.upstream` per forwarded request, from forwarding to the answer (or timeout,
 * cancellation, failure), with `mcp.audit` around what records its outcome. Undefined when
 * tracing is off, so the relay skips every hook.
 */
export function relayTracer(
  describe: () => { server: string; sessionId: string | undefined; userId: string },
): RelayTracer | undefined {
  if (!tracingEnabled()) return undefined;
  const base = (): Attributes => {
    const d = describe();
    return {
      [ATTR.server]: d.server,
      [ATTR.user]: d.userId,
      ...(d.sessionId ? { [ATTR.session]: d.sessionId } : {}),
    };
  };
  return {
    connect: (fn) => inChildSpan('mcp.upstream.connect', fn, base()),
    request(request): RelayRequestTrace | undefined {
      const tool = toolOf(request);
      const started = startChildSpan(
        tool ? `mcp.upstream ${request.method} ${tool}` : `mcp.upstream ${request.method}`,
        { ...base(), [ATTR.method]: request.method, ...(tool ? { [ATTR.tool]: tool } : {}) },
        SpanKind.CLIENT,
      );
      if (!started) return undefined;
      const { span, context } = started;
      return {
        run: (fn) => runInContext(context, fn),
        settled(event: SettledRequest, report: () => void) {
          span.setAttribute(ATTR.outcome, event.outcome);
          const response = event.response;
          if (response && 'error' in response) {
            span.setAttribute(ATTR.rpcCode, String(response.error.code));
            failSpan(span, String(response.error.code));
          } else if (event.outcome !== 'answered') failSpan(span, event.outcome);
          else if ((response?.result as { isError?: unknown } | undefined)?.isError === true)
            span.setAttribute('mcp_gateway.tool_error', true);
          runInContext(context, () => {
            const audit = startChildSpan('mcp.audit');
            try {
              report();
            } finally {
              audit?.span.end();
            }
          });
          span.end();
        },
      };
    },
  };
}
