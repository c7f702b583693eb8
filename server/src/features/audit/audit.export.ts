import type { Writable } from 'node:stream';
import type { AuditExportFormat, AuditEventView } from '@gateway/shared';

/** Columns of the CSV export, in order (the JSONL export has the same fields by name). */
export const CSV_COLUMNS = [
  'seq',
  'id',
  'at',
  'category',
  'action',
  'status',
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
  'latencyMs',
  'requestBytes',
  'responseBytes',
  'credentialScope',
  'traceId',
  'details',
  'prevHash',
  'hash',
] as const satisfies readonly (keyof AuditEventView)[];

/**
 * One CSV field (RFC 4180): quoted when it holds a quote, comma or line break, quotes
 * doubled. Text that a spreadsheet would run as a formula (leading `=`, `+`, `-`, `@`, tab
 * or CR: tool arguments are attacker-controlled) gets a leading `'`; the JSONL export is
 * the exact record.
 */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  let s = typeof value === 'string' ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`;
}

export function formatEvent(view: AuditEventView, format: AuditExportFormat): string {
  switch (format) {
    case 'jsonl':
      return `${JSON.stringify(view)}\n`;
    case 'csv':
      return `${CSV_COLUMNS.map((c) => csvField(view[c])).join(',')}\r\n`;
  }
}

/** Resolves when `out` wants more data; rejects when it closed or failed first (client went away). */
function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      out.off('error', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new Error('export stream closed before it finished'));
    };
    out.on('drain', onDrain);
    out.on('close', onClose);
    out.on('error', onClose);
  });
}

/**
 * Writes pages of events to `out`, one chunk per page, waiting for `drain` whenever the
 * stream's buffer is full, so at most about one page is held in memory however long the
 * export. Returns the number of events written. Does not end `out`.
 */
export async function writeExport(
  pages: AsyncIterable<AuditEventView[]>,
  format: AuditExportFormat,
  out: Writable,
): Promise<number> {
  let count = 0;
  if (format === 'csv' && !out.write(csvHeader())) await drained(out);
  for await (const page of pages) {
    if (out.destroyed) throw new Error('export stream closed before it finished');
    let chunk = '';
    for (const view of page) chunk += formatEvent(view, format);
    count += page.length;
    if (!out.write(chunk)) await drained(out);
  }
  return count;
}
