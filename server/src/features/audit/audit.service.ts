import { randomUUID } from 'node:crypto';
import type { AuditEventView, AuditPage, AuditQuery, AuditStatus } from '@gateway/shared';
import { badRequest } from '../../platform/http/errors.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditInsert, AuditRepository, AuditRow } from './audit.repository.ts';
import { redactForAudit } from './audit.redact.ts';

/** What a feature reports; the service stamps id and time, redacts and caps `details`. */
export interface AuditEventInput {
  category: 'mcp' | 'auth' | 'admin' | 'credential';
  action: string;
  status: AuditStatus;
  userId?: string | null | undefined;
  serverSlug?: string | null | undefined;
  toolName?: string | null | undefined;
  resourceUri?: string | null | undefined;
  threadId?: string | null | undefined;
  sessionId?: string | null | undefined;
  apiKeyId?: string | null | undefined;
  oauthClientId?: string | null | undefined;
  clientName?: string | null | undefined;
  clientVersion?: string | null | undefined;
  ip?: string | null | undefined;
  /** `client->upstream`, `upstream->client`, or undefined for non-MCP events. */
  direction?: string | null | undefined;
  error?: string | null | undefined;
  latencyMs?: number | null | undefined;
  requestBytes?: number | null | undefined;
  responseBytes?: number | null | undefined;
  /** Which credential was used: `user`, `thread`, `server`, `none`. */
  credentialScope?: string | null | undefined;
  details?: unknown;
}

/** Anything that accepts audit events; features depend on this, not on the service. */
export interface AuditSink {
  record(event: AuditEventInput): void;
}

const cap = (s: string | null | undefined, n: number) => (s == null ? s : s.length > n ? `${s.slice(0, n)}…` : s);

/**
 * Collects audit events off the request path and writes them in batches. `record` never
 * blocks and never throws. A failed write keeps the batch in memory and retries with
 * backoff, so a database blip loses nothing; `stop` flushes what is left.
 */
export class AuditService implements AuditSink {
  readonly #repo: AuditRepository;
  readonly #logger: Logger;
  readonly #batchSize: number;
  readonly #intervalMs: number;
  #buffer: AuditInsert[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #failures = 0;

  constructor(repo: AuditRepository, options: { logger: Logger; batchSize: number; flushIntervalMs: number }) {
    this.#repo = repo;
    this.#logger = options.logger.child({ feature: 'audit' });
    this.#batchSize = options.batchSize;
    this.#intervalMs = options.flushIntervalMs;
  }

  /** Events waiting to be written. */
  get pending(): number {
    return this.#buffer.length;
  }

  record(event: AuditEventInput): void {
    this.#buffer.push({
      id: randomUUID(),
      at: new Date(),
      category: event.category,
      action: event.action,
      status: event.status,
      userId: event.userId ?? null,
      serverSlug: event.serverSlug ?? null,
      toolName: cap(event.toolName, 256) ?? null,
      resourceUri: cap(event.resourceUri, 2048) ?? null,
      threadId: event.threadId ?? null,
      sessionId: event.sessionId ?? null,
      apiKeyId: event.apiKeyId ?? null,
      oauthClientId: event.oauthClientId ?? null,
      clientName: cap(event.clientName, 200) ?? null,
      clientVersion: cap(event.clientVersion, 100) ?? null,
      ip: event.ip ?? null,
      direction: event.direction ?? null,
      error: cap(event.error, 2000) ?? null,
      latencyMs: event.latencyMs == null ? null : Math.round(event.latencyMs),
      requestBytes: event.requestBytes ?? null,
      responseBytes: event.responseBytes ?? null,
      credentialScope: event.credentialScope ?? null,
      details: event.details === undefined ? null : redactForAudit(event.details),
    });
    if (this.#buffer.length >= this.#batchSize) this.#schedule(0);
    else this.#schedule(this.#intervalMs);
  }

  #schedule(delay: number) {
    if (this.#timer && delay > 0) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, delay);
    this.#timer.unref();
  }

  /** Writes everything buffered now; resolves when written (or when a write failed). */
  async flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = (async () => {
      while (this.#buffer.length) {
        const batch = this.#buffer.slice(0, this.#batchSize);
        try {
          await this.#repo.insertMany(batch);
          this.#buffer.splice(0, batch.length);
          this.#failures = 0;
        } catch (err) {
          this.#failures++;
          const retryMs = Math.min(30_000, 250 * 2 ** Math.min(this.#failures, 7));
          this.#logger.error(
            { err: (err as Error).message, pending: this.#buffer.length, retryMs },
            'audit write failed; keeping events and retrying',
          );
          this.#schedule(retryMs);
          return;
        }
      }
    })().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  /** Flushes until empty or the deadline passes. */
  async stop(timeoutMs: number): Promise<void> {
    clearTimeout(this.#timer);
    const deadline = Date.now() + timeoutMs;
    while (this.#buffer.length && Date.now() < deadline) {
      await this.flush();
      if (this.#buffer.length) await new Promise((r) => setTimeout(r, 100));
    }
    clearTimeout(this.#timer);
    if (this.#buffer.length) {
      this.#logger.error({ lost: this.#buffer.length }, 'audit events could not be written before shutdown');
    }
  }

  async query(query: AuditQuery): Promise<AuditPage> {
    let beforeSeq: number | undefined;
    if (query.cursor) {
      beforeSeq = Number(Buffer.from(query.cursor, 'base64url').toString());
      if (!Number.isSafeInteger(beforeSeq) || beforeSeq < 1) throw badRequest('query.cursor: is not a valid cursor');
    }
    const rows = await this.#repo.query(
      {
        userId: query.userId,
        serverSlug: query.server,
        action: query.action,
        toolName: query.tool,
        status: query.status,
        category: query.category,
        from: query.from ? new Date(query.from) : undefined,
        to: query.to ? new Date(query.to) : undefined,
        beforeSeq,
      },
      query.limit + 1,
    );
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return {
      events: page.map(toView),
      nextCursor: rows.length > query.limit && last ? Buffer.from(String(last.seq)).toString('base64url') : null,
    };
  }
}

function toView(r: AuditRow): AuditEventView {
  return {
    id: r.id,
    at: r.at.toISOString(),
    category: r.category,
    action: r.action,
    status: r.status,
    userId: r.userId,
    serverSlug: r.serverSlug,
    toolName: r.toolName,
    resourceUri: r.resourceUri,
    threadId: r.threadId,
    sessionId: r.sessionId,
    apiKeyId: r.apiKeyId,
    oauthClientId: r.oauthClientId,
    clientName: r.clientName,
    clientVersion: r.clientVersion,
    ip: r.ip,
    direction: r.direction,
    error: r.error,
    latencyMs: r.latencyMs,
    requestBytes: r.requestBytes,
    responseBytes: r.responseBytes,
    credentialScope: r.credentialScope,
    details: r.details,
  };
}
