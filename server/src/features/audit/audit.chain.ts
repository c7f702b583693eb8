import { createHash } from 'node:crypto';
import type { AuditRecord } from './audit.record.ts';

/** The `prev_hash` of the first event of a chain: 64 zeros. */
export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted (recursively) and no whitespace: jsonb does not keep key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * The canonical form of one event, the input of its hash: a JSON array (no whitespace) of
 * exactly these fields, in this order:
 *
 *   seq, id, at, category, action, status, userId, serverSlug, toolName, resourceUri,
 *   threadId, sessionId, apiKeyId, oauthClientId, clientName, clientVersion, ip, direction,
 *   error, latencyMs, requestBytes, responseBytes, credentialScope, details
 *
 * `at` is ISO-8601 UTC with milliseconds (`2025-01-31T12:00:00.000Z`), absent values are
 * `null`, `details` is canonical JSON (object keys sorted by code unit, recursively).
 * An event with a `traceId` has it as one more element after `details`; one without has no
 * such element, so events written before the column existed keep their hashes, and a
 * trace id added to or changed in a stored row breaks its hash like any other field.
 * Any change to this list or its order invalidates every stored hash.
 */
export function canonicalEvent(seq: number, r: AuditRecord): string {
  const fields = JSON.stringify([
    seq,
    r.id,
    r.at.toISOString(),
    r.category,
    r.action,
    r.status,
    r.userId,
    r.serverSlug,
    r.toolName,
    r.resourceUri,
    r.threadId,
    r.sessionId,
    r.apiKeyId,
    r.oauthClientId,
    r.clientName,
    r.clientVersion,
    r.ip,
    r.direction,
    r.error,
    r.latencyMs,
    r.requestBytes,
    r.responseBytes,
    r.credentialScope,
  ]);
  // `details` goes last, in canonical form (plain JSON.stringify would keep insertion order).
  const details = canonicalJson(r.details);
  return r.traceId == null
    ? `${fields.slice(0, -1)},${details}]`
    : `${fields.slice(0, -1)},${details},${JSON.stringify(r.traceId)}]`;
}

/** `hash` of an event: hex SHA-256 of UTF-8(`prevHash` + "\n" + canonical form). */
export function chainHash(prevHash: string, seq: number, r: AuditRecord): string {
  return createHash('sha256')
    .update(`${prevHash}\n${canonicalEvent(seq, r)}`)
    .digest('hex');
}
