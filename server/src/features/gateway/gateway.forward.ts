import { createHash, timingSafeEqual } from 'node:crypto';
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Request, RequestHandler, Response } from 'express';
import type { Principal } from '../../core/principal.ts';
import { AppError } from '../../platform/http/errors.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { DirectoryEntry, SessionDirectory } from './gateway.directory.ts';

// The internal hop's headers. The secret proves the request comes from a replica; the client
// address, scheme and Host are what the first replica saw (its proxy settings applied), so
// the owner checks and records the same client the first replica did.
const SECRET = 'x-gateway-hop-secret';
const CLIENT_IP = 'x-gateway-hop-ip';
const CLIENT_PROTO = 'x-gateway-hop-proto';
const CLIENT_HOST = 'x-gateway-hop-host';
const HOP_HEADERS = [SECRET, CLIENT_IP, CLIENT_PROTO, CLIENT_HOST];

/** Headers of one connection, never passed on (RFC 9110 section 7.6.1), and those we set ourselves. */
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
  ...HOP_HEADERS,
]);

/** Errors that mean nothing listens at the owner's address any more: the replica is gone. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

const LOCALS_KEY = 'internalHop';

/** Whether this request came from another replica over the internal hop (its secret checked). */
export function isInternalHop(res: Response): boolean {
  return res.locals[LOCALS_KEY] === true;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Compares in constant time (digests of equal length, whatever the inputs' lengths). */
function sameSecret(offered: string, secret: string): boolean {
  return timingSafeEqual(digest(offered), digest(secret));
}

const isMcpPath = (p: string) => p === '/mcp' || p.startsWith('/mcp/');

/** What became of a request for a session this replica does not hold. */
export type ForwardOutcome =
  /** The owner answered (its status, headers and body went to the client). */
  | { kind: 'answered' }
  /** No replica holds it for this caller: answer 404 so the client re-initializes. */
  | { kind: 'not-found' }
  /** The directory or the owner could not be asked now: a retry may succeed. */
  | { kind: 'unavailable'; message: string };

/** The request as gateway.routes.ts checked it. */
export interface ForwardRequest {
  readonly sessionId: string;
  readonly principal: Principal;
  /** `/mcp/{slug}`'s slug; undefined on `/mcp`. */
  readonly slug: string | undefined;
  /** The parsed POST body (sent on as JSON); undefined for GET and DELETE. */
  readonly body?: unknown;
}

/**
 * Both ends of the internal hop between replicas. A replica that receives a request for an
 * MCP session it does not hold asks the session directory which replica does, and forwards
 * the request there with the shared secret; the owner accepts the hop (`acceptHop`),
 * authenticates the forwarded request as the user again and checks the session is theirs,
 * as for any request. Responses, SSE streams included, flow back unbuffered.
 *
 * The first replica has authenticated the caller and applied the rate limits already; it
 * forwards only callers who are the session's user, and never a request that arrived over
 * the hop itself (one hop at most, so a stale entry cannot make a loop).
 */
export class SessionForwarder {
  readonly #directory: SessionDirectory;
  readonly #secret: string;
  readonly #logger: Logger;
  readonly #connectTimeoutMs: number;
  readonly #agents = {
    'http:': new http.Agent({ keepAlive: true }),
    'https:': new https.Agent({ keepAlive: true }),
  };

  constructor(options: {
    directory: SessionDirectory;
    /** INTERNAL_SECRET: the same on every replica. */
    secret: string;
    logger: Logger;
    /** How long to wait for a connection to the owner before taking it for gone. */
    connectTimeoutMs?: number;
  }) {
    this.#directory = options.directory;
    this.#secret = options.secret;
    this.#logger = options.logger.child({ feature: 'gateway', part: 'forward' });
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 3_000;
  }

  /**
   * The owner's end: mount before everything that reads the client's address, scheme or
   * Host. A request carrying the hop secret is accepted only on the MCP paths and only with
   * the right secret (403 otherwise); the hop headers are removed either way.
   */
  acceptHop(): RequestHandler {
    return (req, res, next) => {
      const offered = req.headers[SECRET];
      const client = {
        ip: req.headers[CLIENT_IP],
        proto: req.headers[CLIENT_PROTO],
        host: req.headers[CLIENT_HOST],
      };
      for (const h of HOP_HEADERS) delete req.headers[h];
      if (offered === undefined) return next();
      if (typeof offered !== 'string' || !isMcpPath(req.path) || !sameSecret(offered, this.#secret)) {
        this.#logger.warn(
          { ip: req.ip, path: req.path },
          'refused a request that claimed to come from another replica (wrong INTERNAL_SECRET, or not an MCP path)',
        );
        return next(new AppError('forbidden', 'internal requests are accepted from the replicas only'));
      }
      const define = (name: string, value: unknown) =>
        Object.defineProperty(req, name, { value, configurable: true, enumerable: true });
      if (typeof client.ip === 'string') define('ip', client.ip);
      if (client.proto === 'https' || client.proto === 'http') define('protocol', client.proto);
      if (typeof client.host === 'string') define('host', client.host);
      res.locals[LOCALS_KEY] = true;
      next();
    };
  }

  /**
   * For a session this replica does not hold (or holds for another caller): forwards the
   * request to the replica that holds it for this caller and pipes its answer back.
   */
  async forward(req: Request, res: Response, target: ForwardRequest): Promise<ForwardOutcome> {
    const { sessionId } = target;
    if (isInternalHop(res)) {
      // The directory sent another replica here, yet the session is not here for this caller.
      // Unless this process holds it (another caller's: theirs stays), the entry is stale: a
      // previous process at this address, or one re-written as the session closed.
      if (!this.#directory.holds(sessionId)) {
        const found = await this.#directory.lookup(sessionId).catch(() => undefined);
        if (found && found.entry.owner === this.#directory.owner) {
          await this.#directory.forget(sessionId, found.raw);
        }
      }
      return { kind: 'not-found' };
    }
    let found;
    try {
      found = await this.#directory.lookup(sessionId);
    } catch (err) {
      this.#logger.warn({ err, sessionId }, 'session directory unavailable');
      return { kind: 'unavailable', message: 'the session directory is unavailable; retry shortly' };
    }
    if (!found) return { kind: 'not-found' };
    const { entry, raw } = found;
    if (entry.instance === this.#directory.instance) {
      if (!this.#directory.holds(sessionId)) await this.#directory.forget(sessionId, raw);
      return { kind: 'not-found' };
    }
    if (entry.owner === this.#directory.owner) {
      // Written by an earlier process at this address, which is gone with its sessions.
      await this.#directory.forget(sessionId, raw);
      return { kind: 'not-found' };
    }
    // Another user's session, or another endpoint's: nothing to forward (the owner would
    // refuse it too), and nothing learnt about it.
    if (entry.userId !== target.principal.userId || entry.slug !== (target.slug ?? null)) {
      return { kind: 'not-found' };
    }
    return this.#relay(req, res, entry, raw, target, false);
  }

  #relay(
    req: Request,
    res: Response,
    entry: DirectoryEntry,
    raw: string,
    target: ForwardRequest,
    retried: boolean,
  ): Promise<ForwardOutcome> {
    const url = new URL(`${entry.owner}${req.originalUrl}`);
    const body = req.method === 'POST' ? Buffer.from(JSON.stringify(target.body)) : undefined;
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !NOT_FORWARDED.has(name)) headers[name] = value;
    }
    headers[SECRET] = this.#secret;
    if (req.ip) headers[CLIENT_IP] = req.ip;
    headers[CLIENT_PROTO] = req.protocol;
    if (req.host) headers[CLIENT_HOST] = req.host;
    // One request id across both replicas' logs.
    const requestId = (req as { id?: unknown }).id;
    if (typeof requestId === 'string') headers['x-request-id'] = requestId;
    if (body) headers['content-length'] = body.length;
    const agent = url.protocol === 'https:' ? this.#agents['https:'] : this.#agents['http:'];
    const send = url.protocol === 'https:' ? https.request : http.request;

    return new Promise<ForwardOutcome>((resolve) => {
      let settled = false;
      const settle = (outcome: ForwardOutcome) => {
        if (settled) return;
        settled = true;
        resolve(outcome);
      };
      const out = send(url, { method: req.method, headers, agent }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, responseHeaders(answer.headers));
        res.flushHeaders();
        answer.pipe(res);
        // The owner died mid-answer: end the client's response so it sees the break.
        answer.on('aborted', () => res.destroy());
        answer.on('error', () => res.destroy());
        settle({ kind: 'answered' });
      });
      let connectTimer: NodeJS.Timeout | undefined;
      out.on('socket', (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(() => {
          const err = Object.assign(new Error(`no connection within ${this.#connectTimeoutMs} ms`), {
            code: 'ETIMEDOUT',
          });
          out.destroy(err);
        }, this.#connectTimeoutMs);
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      out.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(connectTimer);
        if (settled) {
          res.destroy();
          return;
        }
        // A kept-alive connection the owner closed as we reused it: the request never got
        // there (Node's documented retry case).
        if (out.reusedSocket && err.code === 'ECONNRESET' && !retried) {
          void this.#relay(req, res, entry, raw, target, true).then(settle);
          return;
        }
        if (UNREACHABLE.has(err.code ?? '') || err.code === 'ETIMEDOUT') {
          this.#logger.info(
            { sessionId: target.sessionId, owner: entry.owner, err: err.code },
            'the replica holding an MCP session is gone; its session is forgotten',
          );
          void this.#directory.forget(target.sessionId, raw).then(() => settle({ kind: 'not-found' }));
          return;
        }
        this.#logger.warn({ err, sessionId: target.sessionId, owner: entry.owner }, 'forwarding failed');
        settle({ kind: 'unavailable', message: 'the replica holding this session did not answer; retry' });
      });
      // The client went away: so does the forwarded request (the owner sees its stream close).
      res.once('close', () => {
        clearTimeout(connectTimer);
        if (!res.writableFinished) out.destroy();
      });
      out.end(body);
    });
  }

  /** Closes the kept-alive connections to the other replicas. */
  close(): void {
    this.#agents['http:'].destroy();
    this.#agents['https:'].destroy();
  }
}

function responseHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value !== undefined && !NOT_FORWARDED.has(name)) out[name] = value;
  }
  // A JSON answer keeps its length; a stream (SSE) goes out chunked as it arrives.
  if (incoming['content-length'] !== undefined && incoming['transfer-encoding'] === undefined) {
    out['content-length'] = incoming['content-length'];
  }
  return out;
}
