import type { RequestHandler, Request } from 'express';
import { AppError } from '../../platform/http/errors.ts';
import type { AuditSink } from '../../core/audit.ts';
import type { Principal } from '../../core/principal.ts';

/** Turns a bearer token into a principal, or says why not (API keys, OAuth access tokens). */
export interface Authenticator {
  /** `undefined`: not this authenticator's kind of token; the next one is asked. `path`: the request path. */
  authenticate(
    token: string,
    path: string,
  ): Promise<{ principal: Principal } | { rejected: string; apiKeyId?: string } | undefined>;
}

export function bearerToken(req: Request): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/**
 * Requires a valid bearer credential. Each authenticator is asked in turn; the first that
 * recognises the token decides. Refusals are 401 with a `WWW-Authenticate` challenge and
 * an audit event; the token itself is never logged or recorded.
 */
export function requireAuth(options: {
  authenticators: Authenticator[];
  audit: AuditSink;
  /** Extra `WWW-Authenticate` parameters, e.g. resource_metadata for MCP endpoints. */
  challenge?: (req: Request) => string | undefined;
  /** Cookie-session sign-in, tried when there is no bearer token ('csrf': a write without the CSRF header). */
  session?: (req: Request) => Promise<Principal | 'csrf' | undefined>;
}): RequestHandler {
  return async (req, res, next) => {
    const fail = (reason: string, apiKeyId?: string) => {
      options.audit.record({
        category: 'auth',
        action: 'auth.reject',
        status: 'denied',
        ip: req.ip ?? null,
        apiKeyId: apiKeyId ?? null,
        error: reason,
        details: { method: req.method, path: req.originalUrl.split('?')[0] },
      });
      const extra = options.challenge?.(req);
      const params = [
        `realm="mcp-gateway"`,
        ...(reason !== 'missing' ? [`error="invalid_token"`] : []),
        ...(extra ? [extra] : []),
      ];
      next(
        new AppError(
          'unauthenticated',
          reason === 'missing'
            ? 'authentication required: send Authorization: Bearer <key>'
            : `invalid credential (${reason})`,
          { headers: { 'WWW-Authenticate': `Bearer ${params.join(', ')}` } },
        ),
      );
    };
    const token = bearerToken(req);
    try {
      if (!token && options.session) {
        const fromSession = await options.session(req);
        if (fromSession === 'csrf') {
          return next(
            new AppError('forbidden', 'missing or wrong X-CSRF-Token header (GET /api/me returns the token)'),
          );
        }
        if (fromSession) {
          res.locals['principal'] = fromSession;
          return next();
        }
      }
      if (!token) return fail('missing');
      for (const a of options.authenticators) {
        const result = await a.authenticate(token, req.originalUrl.split('?')[0] ?? '/');
        if (!result) continue;
        if ('principal' in result) {
          res.locals['principal'] = result.principal;
          return next();
        }
        return fail(result.rejected, result.apiKeyId);
      }
      return fail('unknown');
    } catch (err) {
      next(err);
    }
  };
}
