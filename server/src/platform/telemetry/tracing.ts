import {
  context,
  propagation,
  trace,
  SpanKind,
  SpanStatusCode,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Config } from '../config/config.ts';

/**
 * OpenTelemetry tracing, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
 *
 * The OpenTelemetry API is process-global by design (one tracer provider, one context
 * manager, one propagator per process), so this module keeps one flag beside it. Every
 * helper below checks that flag first: with tracing off, the per-message path pays a
 * boolean test, no span objects and no context switches. Spans are made by hand at the
 * stages an operator asks about (auth, policy, rate limit, upstream connect and call,
 * audit); no auto-instrumentation patches the process.
 */

const TRACER_NAME = 'mcp-gateway';

/** What tracing logs through (the process logger; not imported, since the logger imports this file). */
interface TracingLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

let enabled = false;

/** A started tracer provider; `shutdown` flushes what is buffered and turns tracing off. */
export interface Tracing {
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Starts tracing for this process when the configuration asks for it: an OTLP/HTTP (JSON)
 * exporter behind a batch processor, W3C `traceparent` propagation, and async context
 * that follows awaits. Undefined when tracing is off (or already started in this process).
 */
export function startTracing(
  config: Config['telemetry'],
  process: { role: 'server' | 'workers'; version: string },
  logger: TracingLogger,
): Tracing | undefined {
  if (!config.tracing || enabled) return undefined;
  const { endpoint, headers, serviceName, scheduleDelayMs } = config.tracing;
  const exporter = new OTLPTraceExporter({ url: endpoint, headers: { ...headers } });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: serviceName,
      [ATTR_SERVICE_VERSION]: process.version,
      'mcp_gateway.process': process.role,
    }),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: scheduleDelayMs })],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  enabled = true;
  // The endpoint may carry credentials in its query; only its origin is logged.
  logger.info({ endpoint: new URL(endpoint).origin, serviceName }, 'tracing to an OTLP endpoint');
  let stopped: Promise<void> | undefined;
  return {
    forceFlush: () => provider.forceFlush(),
    shutdown() {
      stopped ??= (async () => {
        await provider.shutdown().catch((err: unknown) => logger.warn({ err }, 'could not flush traces'));
        enabled = false;
        trace.disable();
        propagation.disable();
        context.disable();
      })();
      return stopped;
    },
  };
}

/** Whether spans are being made (OTEL_EXPORTER_OTLP_ENDPOINT set and tracing started). */
export function tracingEnabled(): boolean {
  return enabled;
}

const tracer = () => trace.getTracer(TRACER_NAME);

const headerGetter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/**
 * Starts the span of an incoming request, continuing the caller's trace when its headers
 * carry a W3C `traceparent`. Undefined when tracing is off.
 */
export function startServerSpan(
  name: string,
  headers: Record<string, string | string[] | undefined>,
  attributes: Attributes,
): { span: Span; context: Context } | undefined {
  if (!enabled) return undefined;
  const parent = propagation.extract(context.active(), headers, headerGetter);
  const span = tracer().startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  return { span, context: trace.setSpan(parent, span) };
}

/** Starts a root span (a unit of work that no request started: a chat turn). Undefined when off. */
export function startRootSpan(
  name: string,
  attributes: Attributes,
): { span: Span; context: Context } | undefined {
  if (!enabled) return undefined;
  const span = tracer().startSpan(name, { kind: SpanKind.INTERNAL, attributes, root: true });
  return { span, context: trace.setSpan(context.active(), span) };
}

/**
 * Starts a span under the active one. Undefined when tracing is off or nothing is being
 * traced here (a stage outside any request, such as a scheduled health check, makes none).
 */
export function startChildSpan(
  name: string,
  attributes?: Attributes,
  kind: SpanKind = SpanKind.INTERNAL,
): { span: Span; context: Context } | undefined {
  if (!enabled) return undefined;
  const active = context.active();
  if (!trace.getSpan(active)) return undefined;
  const span = tracer().startSpan(name, { kind, ...(attributes ? { attributes } : {}) }, active);
  return { span, context: trace.setSpan(active, span) };
}

/** The active context (to restore it around a callback that must not run inside a child span). */
export function activeContext(): Context {
  return context.active();
}

/** Adds attributes to the active span, if any. */
export function setActiveAttributes(attributes: Attributes): void {
  if (enabled) trace.getSpan(context.active())?.setAttributes(attributes);
}

/** Runs `fn` with `ctx` active (so spans, logs and audit events inside belong to it). */
export function runInContext<T>(ctx: Context | undefined, fn: () => T): T {
  return ctx ? context.with(ctx, fn) : fn();
}

/** Runs `fn` in a new root span named `name` (a trace of its own), ended when `fn` settles. */
export async function inRootSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  return runInSpan(startRootSpan(name, attributes), fn);
}

/**
 * Runs `fn` in a child span named `name`, ended when `fn` settles (an exception marks it
 * failed). With tracing off, or no active span, just runs `fn`.
 */
export async function inChildSpan<T>(
  name: string,
  fn: () => Promise<T>,
  attributes?: Attributes,
  kind?: SpanKind,
): Promise<T> {
  return runInSpan(startChildSpan(name, attributes, kind), fn);
}

/** Runs `fn` in the started span's context and ends the span when it settles (failed on a throw). */
async function runInSpan<T>(
  started: { span: Span; context: Context } | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  if (!started) return fn();
  try {
    return await context.with(started.context, fn);
  } catch (err) {
    failSpan(started.span, err);
    throw err;
  } finally {
    started.span.end();
  }
}

/**
 * Marks a span failed with the error's type only: an error message can quote what the
 * caller sent, and no argument value belongs in a span.
 */
export function failSpan(span: Span, error: unknown, description?: string): void {
  const type = error instanceof Error ? error.name : typeof error === 'string' ? error : 'error';
  span.setAttribute('error.type', type);
  span.setStatus({ code: SpanStatusCode.ERROR, ...(description ? { message: description } : {}) });
}

/**
 * A `fetch` that adds the active trace's `traceparent` (and `tracestate`) to each request,
 * so a remote MCP server continues the trace. With tracing off, `fetch` itself.
 */
export function propagatingFetch(fetch: typeof globalThis.fetch): typeof globalThis.fetch {
  if (!enabled) return fetch;
  return (input, init) => {
    if (!enabled || !trace.getSpan(context.active())) return fetch(input, init);
    const headers = new Headers(init?.headers);
    propagation.inject(context.active(), headers, { set: (carrier, key, value) => carrier.set(key, value) });
    return fetch(input, { ...init, headers });
  };
}

/**
 * `trace_id` and `span_id` of the active span for a log line (pino's mixin). Always a new
 * object: pino merges each line's own fields into what the mixin returns.
 */
export function traceLogFields(): Record<string, string> {
  if (!enabled) return {};
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/** The active trace's id (32 hex digits), for records that outlive the trace (audit events). */
export function activeTraceId(): string | undefined {
  if (!enabled) return undefined;
  const span = trace.getSpan(context.active());
  return span?.spanContext().traceId;
}

export { SpanKind, SpanStatusCode, type Attributes, type Span } from '@opentelemetry/api';
