import { AsyncLocalStorage } from 'node:async_hooks';
import type { JSONRPCNotification, JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { AuditEventInput, AuditSink } from '../../core/audit.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { GatewayMetrics, SessionContext } from './gateway.ports.ts';
import type { SettledRequest } from './mcp.relay.ts';

export const textOf = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** Replaces every occurrence of the given secrets in a JSON-like value. */
export function scrub<T>(value: T, secrets: readonly string[] | undefined): T {
  if (!secrets?.length) return value;
  const text = JSON.stringify(value);
  if (text === undefined) return value;
  let out = text;
  for (const secret of secrets) {
    const encoded = JSON.stringify(secret).slice(1, -1);
    if (out.includes(encoded)) out = out.split(encoded).join('[redacted]');
  }
  return out === text ? value : (JSON.parse(out) as T);
}

/** The session a relayed message belongs to, as its audit record names it. */
export interface AuditBase {
  context: SessionContext;
  sessionId: string | undefined;
  slug: string | undefined;
  clientInfo?: { name?: string; version?: string } | undefined;
  credentialScope?: string;
  /** Values to scrub from what is recorded (a tool may echo a secret it was given). */
  secrets?: readonly string[];
}

/**
 * What the gateway records about the MCP traffic it relays: one audit event and one metrics
 * sample per settled request or notification, and a log line for every failure or denial,
 * carrying the id of the HTTP request the message arrived in.
 */
export class GatewayAudit {
  readonly #audit: AuditSink;
  readonly #metrics: GatewayMetrics | undefined;
  readonly #logger: Logger;
  /** The HTTP request a message arrived in, so failures it leads to are logged with its id. */
  readonly #requestScope = new AsyncLocalStorage<{ requestId: string }>();
  /**
   * Request id by the params object of a relayed request: a stdio upstream answers outside
   * the HTTP request's async context, but the relay reports the same params object back.
   */
  readonly #requestIds = new WeakMap<object, string>();

  constructor(deps: { audit: AuditSink; metrics?: GatewayMetrics | undefined; logger: Logger }) {
    this.#audit = deps.audit;
    this.#metrics = deps.metrics;
    this.#logger = deps.logger;
  }

  /** Runs `fn` (handing an HTTP request to a session) with that request's id in scope for logs. */
  inRequest<T>(requestId: string, fn: () => T): T {
    return this.#requestScope.run({ requestId }, fn);
  }

  /** The id of the HTTP request being handled, if any. */
  get currentRequestId(): string | undefined {
    return this.#requestScope.getStore()?.requestId;
  }

  /** Remembers the HTTP request id of a relayed request, for logs about its outcome. */
  noteRequest(request: JSONRPCRequest): void {
    const requestId = this.currentRequestId;
    if (requestId && request.params) this.#requestIds.set(request.params, requestId);
  }

  #requestIdOf(params: unknown): string | undefined {
    const noted = params && typeof params === 'object' ? this.#requestIds.get(params) : undefined;
    return noted ?? this.currentRequestId;
  }

  /** Builds the audit record of one relayed request. */
  settled(e: SettledRequest, base: AuditBase): void {
    const params = (e.params ?? {}) as Record<string, unknown>;
    const response = e.response;
    const isRpcError = response && 'error' in response;
    const result =
      response && 'result' in response ? (response.result as Record<string, unknown>) : undefined;
    const toolError = e.method === 'tools/call' && result?.['isError'] === true;
    const status: AuditEventInput['status'] =
      e.outcome === 'denied'
        ? 'denied'
        : e.outcome !== 'answered' || isRpcError || toolError
          ? 'error'
          : 'ok';
    const error =
      e.error ??
      (isRpcError
        ? `${response.error.code}: ${response.error.message}`
        : toolError
          ? 'tool returned isError'
          : undefined);
    this.#audit.record({
      category: 'mcp',
      action: e.method,
      status,
      userId: base.context.principal.userId,
      serverSlug: base.slug ?? null,
      toolName: e.method === 'tools/call' || e.method === 'prompts/get' ? textOf(params['name']) : undefined,
      resourceUri: textOf(params['uri']),
      threadId: base.context.threadId,
      sessionId: base.sessionId,
      apiKeyId: base.context.principal.apiKeyId,
      oauthClientId: base.context.principal.oauthClientId,
      clientName: base.clientInfo?.name,
      clientVersion: base.clientInfo?.version,
      ip: base.context.ip,
      direction: e.direction,
      // A connect link's state is single-use and bound to the user, but still not for the record.
      error:
        error === undefined
          ? undefined
          : scrub(error.replace(/([?&]state=)[^\s&"]+/g, '$1[redacted]'), base.secrets),
      latencyMs: e.latencyMs,
      requestBytes: e.requestBytes,
      responseBytes: response ? Buffer.byteLength(JSON.stringify(response)) : null,
      credentialScope: base.credentialScope,
      details: scrub(
        {
          ...(params['arguments'] !== undefined ? { arguments: params['arguments'] } : {}),
          ...(result !== undefined ? { result } : {}),
          ...(e.outcome !== 'answered' ? { outcome: e.outcome } : {}),
        },
        base.secrets,
      ),
    });
    const tool = e.method === 'tools/call' || e.method === 'prompts/get' ? textOf(params['name']) : undefined;
    const outcome =
      status === 'ok' ? 'ok' : e.outcome !== 'answered' ? e.outcome : toolError ? 'tool_error' : 'error';
    this.#metrics?.recordMcpRequest({
      server: base.slug ?? '_aggregate',
      method: e.method,
      tool: tool ?? '',
      status: outcome,
      latencyMs: e.latencyMs,
    });
    if (status !== 'ok') {
      // Upstream failures and policy denials, with what an operator needs to find them.
      const entry = {
        requestId: this.#requestIdOf(e.params),
        sessionId: base.sessionId,
        userId: base.context.principal.userId,
        server: base.slug,
        method: e.method,
        tool,
        direction: e.direction,
        outcome,
        error,
        latencyMs: e.latencyMs,
      };
      if (status === 'denied') this.#logger.info(entry, 'MCP request denied');
      else if (toolError) this.#logger.info(entry, 'MCP tool returned an error');
      else this.#logger.warn(entry, 'MCP request failed');
    }
  }

  /**
   * Records what happened to a whole session rather than one message: `mcp.session_closed`
   * (the gateway ended it because its user lost access) or `mcp.session_refused` (a limit).
   */
  sessionEvent(
    action: 'mcp.session_closed' | 'mcp.session_refused',
    base: AuditBase,
    reason: string,
    details?: Record<string, unknown>,
  ): void {
    this.#audit.record({
      category: 'mcp',
      action,
      status: 'denied',
      userId: base.context.principal.userId,
      serverSlug: base.slug ?? null,
      threadId: base.context.threadId,
      sessionId: base.sessionId,
      apiKeyId: base.context.principal.apiKeyId,
      oauthClientId: base.context.principal.oauthClientId,
      ip: base.context.ip,
      error: reason,
      details,
    });
  }

  /** Records one relayed notification. */
  notification(
    direction: 'client->upstream' | 'upstream->client',
    n: JSONRPCNotification,
    base: AuditBase,
  ): void {
    this.#audit.record({
      category: 'mcp',
      action: n.method,
      status: 'ok',
      userId: base.context.principal.userId,
      serverSlug: base.slug ?? null,
      threadId: base.context.threadId,
      sessionId: base.sessionId,
      apiKeyId: base.context.principal.apiKeyId,
      oauthClientId: base.context.principal.oauthClientId,
      ip: base.context.ip,
      direction,
      resourceUri: textOf((n.params as Record<string, unknown> | undefined)?.['uri']),
      details:
        n.method === 'notifications/message' ? { level: (n.params as { level?: string })?.level } : undefined,
    });
  }
}
