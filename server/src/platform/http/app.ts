import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type ErrorRequestHandler, type Express, type RequestHandler, type Router } from 'express';
import helmet from 'helmet';
import type { ErrorBody } from '@gateway/shared';
import type { Logger } from '../logging/logger.ts';
import { AppError } from './errors.ts';
import { refuseDeepJson } from './json-depth.ts';
import { requestLog } from './request-log.ts';

export interface AppOptions {
  logger: Logger;
  bodyLimit: string;
  trustProxy: boolean | number | string[];
  /** Built client to serve at `/`, with index.html as the fallback for client routes. */
  clientDistDir?: string | undefined;
  /** Mounted in order, before the client and the 404 handler. */
  routers: Router[];
  /** Run on every request right after logging and security headers: request metrics, HTTPS enforcement. */
  early?: RequestHandler[] | undefined;
}

/** Builds the express application: security headers, logging, body limits, routes, errors. */
export function createApp(options: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', options.trustProxy);
  app.set('query parser', 'simple');

  app.use(requestLog(app, options.logger));
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'self'"],
          connectSrc: ["'self'", 'ws:', 'wss:'],
          imgSrc: ["'self'", 'data:'],
          frameAncestors: ["'none'"],
        },
      },
      // HSTS only on HTTPS responses in production: httpsOnly (tls.ts) sends it.
      strictTransportSecurity: false,
    }),
  );
  for (const handler of options.early ?? []) app.use(handler);
  // MCP endpoints parse their own bodies: their errors must be JSON-RPC errors, not REST ones.
  const json = express.json({
    limit: options.bodyLimit,
    type: ['application/json', 'application/*+json'],
    verify: refuseDeepJson,
  });
  app.use((req, res, next) =>
    req.path === '/mcp' || req.path.startsWith('/mcp/') ? next() : json(req, res, next),
  );

  for (const router of options.routers) app.use(router);

  app.use('/api', ((req, _res, next) => {
    next(new AppError('not_found', `no route for ${req.method} ${req.baseUrl}${req.path}`));
  }) satisfies RequestHandler);

  const dist = options.clientDistDir;
  if (dist && existsSync(path.join(dist, 'index.html'))) {
    app.use(express.static(dist, { index: false, maxAge: '1h' }));
    app.get('/{*path}', (req, res, next) => {
      if (!req.accepts('html')) return next();
      res.set('Cache-Control', 'no-cache').sendFile(path.join(dist, 'index.html'));
    });
  }

  app.use(((req, _res, next) => {
    next(new AppError('not_found', `no route for ${req.method} ${req.path}`));
  }) satisfies RequestHandler);
  app.use(errorHandler(options.logger));
  return app;
}

/** Maps body-parser errors onto AppErrors; everything unknown is an internal error. */
function normalise(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  const e = err as { type?: string; status?: number; limit?: number };
  if (e?.type === 'entity.too.large') {
    return new AppError('payload_too_large', `request body is larger than the limit of ${e.limit} bytes`);
  }
  if (e?.type === 'entity.parse.failed') {
    return new AppError('bad_request', 'request body is not valid JSON');
  }
  if (e?.type === 'entity.too.deep') {
    return new AppError('bad_request', `request body nests JSON deeper than ${e.limit} levels`);
  }
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') {
    return new AppError('bad_request', 'unsupported request body encoding');
  }
  return undefined;
}

/**
 * The one error handler: a JSON error body with a stable code. Internal errors are logged
 * with their stack and answered with a generic message and the request id, nothing else.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const requestId = String((req as { id?: unknown }).id ?? '');
    const known = normalise(err);
    const appError = known ?? new AppError('internal', 'internal error');
    if (!known || !appError.expose) {
      const userId = (res.locals['principal'] as { userId?: string } | undefined)?.userId;
      logger.error({ err, requestId, userId, method: req.method, path: req.path }, 'request failed');
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    const body: ErrorBody = {
      error: {
        code: appError.code,
        message: appError.expose ? appError.message : `internal error (request id ${requestId})`,
        requestId,
        ...(appError.issues ? { issues: appError.issues } : {}),
      },
    };
    if (appError.headers) res.set(appError.headers);
    res.status(appError.status).json(body);
  };
}
