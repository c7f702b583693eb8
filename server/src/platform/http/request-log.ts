import { randomUUID } from 'node:crypto';
import type { Express, Request, RequestHandler } from 'express';
import { loggableUrl, type Logger } from '../logging/logger.ts';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Request ids and one access line per request that did not succeed (and per request at all
 * when the level is `debug`).
 *
 * This replaced pino-http, which creates a child logger for every request (serializing and
 * redacting its bindings) even when the line it would write is below the level: 9% of the
 * gateway's CPU per relayed MCP message at 32 clients, for a line that is not written. MCP
 * traffic is in the metrics and the audit trail; here a request costs an id and a listener.
 *
 * A caller's `X-Request-Id` is kept when it is well formed, so traces join up across hops.
 * `req.log` (a child logger with the request id) is made on first use only.
 */
export function requestLog(app: Express, logger: Logger): RequestHandler {
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request & { id: string }) {
      const child = logger.child({ requestId: this.id });
      Object.defineProperty(this, 'log', { value: child });
      return child;
    },
  });
  return (req, res, next) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    (req as { id?: string }).id = id;
    res.setHeader('X-Request-Id', id);
    // Probes would drown everything else at debug.
    if (req.url === '/healthz' || req.url === '/readyz') return next();
    const started = performance.now();
    res.once('close', () => {
      const status = res.statusCode;
      const finished = res.writableFinished;
      // A stream the client closed (every MCP session's GET stream ends so) is no failure.
      const level =
        status >= 500
          ? 'error'
          : status >= 400
            ? 'warn'
            : logger.isLevelEnabled('debug')
              ? 'debug'
              : undefined;
      if (!level) return;
      const locals = res.locals as Record<string, unknown>;
      const userId = (locals['principal'] as { userId?: string } | undefined)?.userId;
      const server = (locals['server'] as { slug?: string } | undefined)?.slug;
      logger[level](
        {
          req: { id, method: req.method, url: loggableUrl(req.originalUrl) },
          res: { statusCode: status },
          responseTime: Math.round(performance.now() - started),
          ...(userId ? { userId } : {}),
          ...(server ? { server } : {}),
        },
        finished ? 'request completed' : 'request aborted',
      );
    });
    next();
  };
}

/** The request's own logger (its lines carry the request id). */
export const requestLogger = (req: Request): Logger => (req as unknown as { log: Logger }).log;
