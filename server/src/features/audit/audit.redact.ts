/** Keys whose values are replaced before anything reaches the audit trail. */
const SECRET_KEY =
  /pass(word)?|secret|token|api[-_]?key|authorization|cookie|credential|private[-_]?key|session[-_]?id|bearer/i;

const MAX_STRING = 2_000;
const MAX_ITEMS = 50;
const MAX_DEPTH = 6;
const MAX_TOTAL = 16_384;

function walk(value: unknown, depth: number): unknown {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…[${value.length} chars]` : value;
  }
  if (depth >= MAX_DEPTH) return '[depth limit]';
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => walk(v, depth + 1));
    if (value.length > MAX_ITEMS) items.push(`[${value.length - MAX_ITEMS} more]`);
    return items;
  }
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>).slice(0, MAX_ITEMS)) {
      out[k] = SECRET_KEY.test(k) ? '[redacted]' : walk(v, depth + 1);
    }
    return out;
  }
  return String(value);
}

/**
 * Prepares MCP arguments and results for the audit trail: values under secret-looking keys
 * are replaced, long strings (base64 images, file bodies) truncated, depth and breadth
 * bounded, and the whole capped at 16 KiB.
 */
export function redactForAudit(value: unknown): unknown {
  const out = walk(value, 0);
  const text = JSON.stringify(out);
  if (text !== undefined && text.length > MAX_TOTAL) {
    return { truncated: true, bytes: text.length, preview: text.slice(0, 2_000) };
  }
  return out;
}
