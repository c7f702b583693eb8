import { Router, type Request, type RequestHandler, type Response } from 'express';
import { AppError } from '../../platform/http/errors.ts';
import { principalOf, type Principal } from '../../core/principal.ts';
import type {
  RateLimitRejection,
  RateLimitService,
  RateLimitSubject,
  ToolCallTarget,
} from './ratelimit.service.ts';

/**
 * JSON-RPC error code of a rate-limit refusal on the MCP endpoints: in the range JSON-RPC
 * leaves to implementations (-32000..-32099), 429 as a mnemonic. The HTTP status is 429 too.
 */
export const RATE_LIMITED_RPC_CODE = -32029;

const isMcpPath = (path: string) => path === '/mcp' || path.startsWith('/mcp/');

const subjectOf = (req: Request, principal?: Principal): RateLimitSubject => ({
  ip: req.ip,
  principal,
  method: req.method,
  path: req.originalUrl.split('?')[0] ?? '',
});

/** 429 with Retry-After and a JSON-RPC error body (MCP clients read those). */
function sendRpcRateLimited(res: Response, refused: RateLimitRejection, id: unknown): void {
  if (res.headersSent) return;
  res
    .status(429)
    .set('Retry-After', String(refused.retryAfterSeconds))
    .json({
      jsonrpc: '2.0',
      id: id ?? null,
      error: {
        code: RATE_LIMITED_RPC_CODE,
        message: refused.message,
        data: { scope: refused.scope, retryAfterSeconds: refused.retryAfterSeconds },
      },
    });
}

const restError = (refused: RateLimitRejection) =>
  new AppError('rate_limited', refused.message, {
    headers: { 'Retry-After': String(refused.retryAfterSeconds) },
  });

/**
 * The per-address limit, before authentication: mount it ahead of every route it should
 * cover (health checks and /metrics stay outside it). REST callers get the JSON error body
 * with code `rate_limited`; MCP endpoints a JSON-RPC error. Both with 429 and Retry-After.
 */
export function ipRateLimit(service: RateLimitService): Router {
  const router = Router();
  router.use(async (req, res, next) => {
    const refused = await service.checkIp(subjectOf(req));
    if (!refused) return next();
    if (isMcpPath(req.path)) return sendRpcRateLimited(res, refused, null);
    next(restError(refused));
  });
  return router;
}

/** The per-user limit of the REST API; mount after authentication. */
export function userRateLimit(service: RateLimitService): RequestHandler {
  return async (req, res, next) => {
    const principal = principalOf(res);
    const refused = await service.checkUser({ ...subjectOf(req, principal), principal });
    next(refused ? restError(refused) : undefined);
  };
}

/**
 * The MCP endpoints' admission check (`gatewayRoutes({ admit })`): user, user and server,
 * and tool limits, before a message reaches the session, so a refused call never reaches an
 * upstream. Answers a refusal itself and resolves false.
 */
export function mcpRateLimit(service: RateLimitService) {
  return async (
    req: Request,
    res: Response,
    request: {
      principal: Principal;
      slug: string | undefined;
      toolCalls: readonly ToolCallTarget[];
      rpcId: unknown;
    },
  ): Promise<boolean> => {
    const refused = await service.checkMcp(
      { ...subjectOf(req, request.principal), principal: request.principal },
      { slug: request.slug, toolCalls: request.toolCalls },
    );
    if (!refused) return true;
    sendRpcRateLimited(res, refused, request.rpcId);
    return false;
  };
}
