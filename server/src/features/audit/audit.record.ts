import { randomUUID } from 'node:crypto';
import type { AuditEventView, AuditStatus } from '@gateway/shared';
import type { AuditEventInput } from '../../core/audit.ts';
import { activeTraceId } from '../../platform/telemetry/tracing.ts';
import { redactForAudit } from './audit.redact.ts';

/**
 * One event ready to be chained and stored. Every value is already in the form the
 * database gives back (lower-case UUIDs, whole numbers in int4 range, well-formed strings
 * without NUL, JSON-only `details`), so the hash computed before the insert is the hash
 * verification recomputes from the stored row.
 */
export type AuditRecord = Omit<AuditEventView, 'seq' | 'at' | 'prevHash' | 'hash'> & { at: Date };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INT4_MAX = 2_147_483_647;

/**
 * PostgreSQL rejects NUL in text and jsonb, and node-postgres turns lone surrogates into
 * U+FFFD on the way in: either would make a batch unwritable or its hash unverifiable.
 */
function cleanText(s: string): string {
  return s.toWellFormed().replaceAll('\u0000', '\uFFFD');
}

function text(s: string | null | undefined, max?: number): string | null {
  if (s == null) return null;
  const clean = cleanText(String(s));
  return max !== undefined && clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

function uuidOrNull(s: string | null | undefined): string | null {
  if (s == null) return null;
  const lower = String(s).toLowerCase();
  // An id that is not a UUID would fail the whole batch's insert; it cannot name a row anyway.
  return UUID.test(lower) ? lower : null;
}

function int4(n: number | null | undefined): number | null {
  if (n == null || !Number.isFinite(n)) return null;
  return Math.max(-INT4_MAX - 1, Math.min(INT4_MAX, Math.round(n)));
}

/** The JSON value jsonb stores for `value` (what `JSON.stringify` keeps), with clean strings. */
function jsonValue(value: unknown): unknown {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? (Object.is(value, -0) ? 0 : value) : null;
  if (typeof value === 'string') return cleanText(value);
  if (Array.isArray(value))
    return value.map((v) => (v === undefined || typeof v === 'function' ? null : jsonValue(v)));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      out[cleanText(k)] = jsonValue(v);
    }
    return out;
  }
  return value === undefined ? null : cleanText(String(value));
}

/** Stamps, caps, redacts and normalises one reported event. Never throws for odd input. */
export function buildAuditRecord(event: AuditEventInput, at: Date = new Date()): AuditRecord {
  return {
    id: randomUUID(),
    at: new Date(Math.trunc(at.getTime())),
    category: text(event.category) ?? 'unknown',
    action: text(event.action, 256) ?? 'unknown',
    status: event.status,
    userId: uuidOrNull(event.userId),
    serverSlug: text(event.serverSlug, 256),
    toolName: text(event.toolName, 256),
    resourceUri: text(event.resourceUri, 2048),
    threadId: text(event.threadId, 256),
    sessionId: text(event.sessionId, 256),
    apiKeyId: uuidOrNull(event.apiKeyId),
    oauthClientId: text(event.oauthClientId, 256),
    clientName: text(event.clientName, 200),
    clientVersion: text(event.clientVersion, 100),
    ip: text(event.ip, 64),
    direction: text(event.direction, 32),
    error: text(event.error, 2000),
    latencyMs: int4(event.latencyMs),
    requestBytes: int4(event.requestBytes),
    responseBytes: int4(event.responseBytes),
    credentialScope: text(event.credentialScope, 32),
    traceId: text(event.traceId ?? activeTraceId(), 32),
    details: event.details === undefined ? null : jsonValue(redactForAudit(event.details)),
  };
}

/** One spool-file line (JSON). */
export function recordToLine(r: AuditRecord): string {
  return JSON.stringify({ ...r, at: r.at.toISOString() });
}

const nullableText = (v: unknown) => v === null || typeof v === 'string';
const nullableInt = (v: unknown) => v === null || Number.isSafeInteger(v);

/** Parses a spool-file line back into a record; undefined when the line is not one (torn write). */
export function recordFromLine(line: string): AuditRecord | undefined {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (!o || typeof o !== 'object') return undefined;
  const at = typeof o['at'] === 'string' ? new Date(o['at']) : undefined;
  if (
    typeof o['id'] !== 'string' ||
    !UUID.test(o['id']) ||
    !at ||
    Number.isNaN(at.getTime()) ||
    typeof o['category'] !== 'string' ||
    typeof o['action'] !== 'string' ||
    !['ok', 'error', 'denied'].includes(o['status'] as string)
  ) {
    return undefined;
  }
  const texts = [
    'userId',
    'serverSlug',
    'toolName',
    'resourceUri',
    'threadId',
    'sessionId',
    'apiKeyId',
    'oauthClientId',
    'clientName',
    'clientVersion',
    'ip',
    'direction',
    'error',
    'credentialScope',
    'traceId',
  ] as const;
  const ints = ['latencyMs', 'requestBytes', 'responseBytes'] as const;
  if (!texts.every((k) => nullableText(o[k] ?? null)) || !ints.every((k) => nullableInt(o[k] ?? null))) {
    return undefined;
  }
  const pick = (k: (typeof texts)[number] | (typeof ints)[number]) => (o[k] ?? null) as never;
  return {
    id: o['id'],
    at,
    category: o['category'],
    action: o['action'],
    status: o['status'] as AuditStatus,
    userId: pick('userId'),
    serverSlug: pick('serverSlug'),
    toolName: pick('toolName'),
    resourceUri: pick('resourceUri'),
    threadId: pick('threadId'),
    sessionId: pick('sessionId'),
    apiKeyId: pick('apiKeyId'),
    oauthClientId: pick('oauthClientId'),
    clientName: pick('clientName'),
    clientVersion: pick('clientVersion'),
    ip: pick('ip'),
    direction: pick('direction'),
    error: pick('error'),
    latencyMs: pick('latencyMs'),
    requestBytes: pick('requestBytes'),
    responseBytes: pick('responseBytes'),
    credentialScope: pick('credentialScope'),
    traceId: pick('traceId'),
    details: o['details'] ?? null,
  };
}
