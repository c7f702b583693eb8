import express, {
  Router,
  type ErrorRequestHandler,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { slugSchema } from '@gateway/shared';
import type { AuditSink } from '../../core/audit.ts';
import { principalOf, type Principal } from '../../core/principal.ts';
import { requireAuth, type Authenticator } from '../auth/index.ts';
import type { HostPolicy } from '../../platform/http/hosts.ts';
import { refuseDeepJson } from '../../platform/http/json-depth.ts';
import { splitName } from './aggregate.names.ts';
import { RpcCode, sendRpcError, SessionLimitReached } from './gateway.errors.ts';
import { isMessage, isRequest } from './gateway.messages.ts';
import { isInternalHop, type SessionForwarder } from './gateway.forward.ts';
import type { GatewaySession, Gateway } from './gateway.service.ts';
import type { SessionContext } from './gateway.ports.ts';
import { traceMcpRequest, traceStage } from './gateway.tracing.ts';

/**
 * A check every MCP request passes before it reaches a session (rate limits): it answers a
 * refused request itself and resolves false. `toolCalls` are the body's `tools/call`s with
 * the server each goes to (on `/mcp`, split from `{server}__{tool}`).
 */
export type McpAdmission = (
  req: Request,
  res: Response,
  request: {
    principal: Principal;
    slug: string | undefined;
    toolCalls: { slug: string; tool: string }[];
    rpcId: unknown;
  },
) => Promise<boolean>;

const requestIdOf = (req: Request) => String((req as { id?: unknown }).id ?? '');

/** The `tools/call`s in a POST body and their servers (`slug` on `/mcp/{slug}`, from the name on `/mcp`). */
function toolCallsOf(messages: unknown[], slug: string | undefined): { slug: string; tool: string }[] {
  const calls: { slug: string; tool: string }[] = [];
  for (const m of messages) {
    if (!isRequest(m) || m.method !== 'tools/call') continue;
    const name = (m.params as { name?: unknown } | undefined)?.name;
    if (typeof name !== 'string') continue;
    if (slug !== undefined) {
      calls.push({ slug, tool: name });
      continue;
    }
    const split = splitName(name);
    if (split) calls.push({ slug: split.slug, tool: split.name });
  }
  return calls;
}

/**
 * Streamable HTTP endpoints: `/mcp` (aggregate) and `/mcp/{slug}` (one server), each with
 * POST (messages), GET (the standalone SSE stream) and DELETE (end the session). Checks,
 * in order: Host (403), Origin (403), authentication (401), server visibility (404) and credential
 * scope (403), body size (413) and JSON-RPC shape (-32700/-32600), rate limits (429),
 * session (404; with several replicas, a session another replica holds is forwarded there).
 */
export function gatewayRoutes(options: {
  gateway: Gateway;
  authenticators: Authenticator[];
  /** Extra WWW-Authenticate parameters for a 401 on a path (OAuth protected resource metadata). */
  challenge?: (req: Request) => string | undefined;
  audit: AuditSink;
  bodyLimit: string;
  publicOrigins: readonly string[];
  allowedOrigins: readonly string[];
  /** The Host header values this deployment answers (PUBLIC_URL, loopback, ALLOWED_HOSTS). */
  hosts: HostPolicy;
  /** Rate limits: asked after authentication and body parsing, before the session sees anything. */
  admit?: McpAdmission | undefined;
  /**
   * With several replicas: requests for a session another replica holds go there. Requests
   * that came over that hop were admitted (rate limits) by the replica that forwarded them.
   */
  forwarder?: Pick<SessionForwarder, 'forward'> | undefined;
}): Router {
  const { gateway } = options;
  const router = Router();
  const paths = ['/mcp', '/mcp/:slug'];

  /** Refuses a request before it reaches a session: an audit event, then a JSON-RPC error. */
  const refuse = (
    req: Request,
    res: Response,
    status: number,
    code: number,
    message: string,
    id?: unknown,
  ) => {
    options.audit.record({
      category: 'mcp',
      action: 'mcp.refused',
      status: status === 403 || status === 404 || status === 429 ? 'denied' : 'error',
      userId: (res.locals['principal'] as Principal | undefined)?.userId ?? null,
      apiKeyId: (res.locals['principal'] as Principal | undefined)?.apiKeyId ?? null,
      oauthClientId: (res.locals['principal'] as Principal | undefined)?.oauthClientId ?? null,
      serverSlug: (req.params['slug'] as string | undefined) ?? null,
      sessionId: req.header('mcp-session-id') ?? null,
      ip: req.ip ?? null,
      error: message,
      details: { httpStatus: status, httpMethod: req.method, requestId: requestIdOf(req) },
    });
    sendRpcError(res, status, code, message, id);
  };

  // Before Origin: a DNS-rebinding page sends its own name as both Host and Origin, so
  // Origin agrees with Host; only the Host itself gives it away.
  const checkHost: RequestHandler = (req, res, next) => {
    if (options.hosts.allowsRequest(req)) return next();
    refuse(req, res, 403, RpcCode.ServerError, 'Invalid Host header: this host is not served here');
  };

  // Browsers send Origin; a foreign one is refused to stop DNS-rebinding and cross-site
  // requests reaching local sessions (MCP spec, Streamable HTTP security warning).
  const checkOrigin: RequestHandler = (req, res, next) => {
    const origin = req.headers.origin;
    if (!origin) return next();
    const own = `${req.protocol}://${req.get('host')}`;
    if (origin === own || options.publicOrigins.includes(origin) || options.allowedOrigins.includes(origin))
      return next();
    refuse(req, res, 403, RpcCode.InvalidRequest, `Origin ${origin} is not allowed`);
  };

  const auth = traceStage(
    'mcp.auth',
    requireAuth({
      authenticators: options.authenticators,
      audit: options.audit,
      ...(options.challenge ? { challenge: options.challenge } : {}),
    }),
  );
  // Authentication failures on MCP paths are answered as JSON-RPC-shaped errors with the challenge.
  const authErrors: ErrorRequestHandler = (
    err: { status?: number; headers?: Record<string, string>; message?: string },
    _req,
    res,
    next,
  ) => {
    if (err?.status === 401 || err?.status === 403) {
      if (err.headers) res.set(err.headers);
      // Already audited by requireAuth (auth.reject).
      return sendRpcError(
        res,
        err.status,
        err.status === 401 ? RpcCode.InvalidRequest : RpcCode.Forbidden,
        err.message ?? 'unauthorized',
      );
    }
    next(err);
  };

  const resolveServer: RequestHandler = async (req, res, next) => {
    const slug = req.params['slug'] as string | undefined;
    if (slug === undefined) return next();
    const principal = principalOf(res);
    const server = slugSchema.safeParse(slug).success ? await gateway.deps.registry.get(slug) : undefined;
    // A server the caller may not use is indistinguishable from one that does not exist.
    const visible =
      server && gateway.deps.access.canUseServer({ ...principal, serverScope: undefined }, server);
    if (!server || !visible) return refuse(req, res, 404, RpcCode.InvalidRequest, `no MCP server ${slug}`);
    if (principal.serverScope && !principal.serverScope.includes(slug)) {
      gateway.deps.logger.info(
        { requestId: requestIdOf(req), userId: principal.userId, server: slug, method: req.method },
        'MCP request denied: credential not scoped to this server',
      );
      return refuse(req, res, 403, RpcCode.Forbidden, `this credential is not allowed to use server ${slug}`);
    }
    res.locals['server'] = server;
    next();
  };

  const json = express.json({ limit: options.bodyLimit, type: () => true, verify: refuseDeepJson });
  const parseBody: RequestHandler = (req, res, next) => {
    json(req, res, (err?: { type?: string; limit?: number }) => {
      if (!err) return next();
      if (err.type === 'entity.too.large')
        return refuse(req, res, 413, RpcCode.InvalidRequest, `message larger than ${err.limit} bytes`);
      if (err.type === 'entity.parse.failed')
        return refuse(req, res, 400, RpcCode.ParseError, 'Parse error: body is not valid JSON');
      if (err.type === 'entity.too.deep')
        return refuse(
          req,
          res,
          400,
          RpcCode.ParseError,
          `Parse error: JSON nests deeper than ${err.limit} levels`,
        );
      return refuse(req, res, 400, RpcCode.InvalidRequest, 'unreadable request body');
    });
  };

  /** An internal failure: logged with who, where and which request; the client gets a generic error. */
  const failed = (req: Request, res: Response, err: unknown, id?: unknown) => {
    gateway.deps.logger.error(
      {
        err,
        requestId: requestIdOf(req),
        userId: (res.locals['principal'] as Principal | undefined)?.userId,
        server: req.params['slug'],
        method: req.method,
        sessionId: req.header('mcp-session-id'),
      },
      `MCP ${req.method} failed`,
    );
    sendRpcError(res, 500, RpcCode.InternalError, `internal error (request id ${requestIdOf(req)})`, id);
  };

  const context = (req: Request, res: Response): SessionContext => ({
    principal: principalOf(res),
    ip: req.ip,
  });

  /** The session the request names, held here; undefined once the request is answered otherwise. */
  const findSession = async (req: Request, res: Response): Promise<GatewaySession | undefined> => {
    const id = req.header('mcp-session-id');
    const bodyId = (req.body as { id?: unknown } | undefined)?.id;
    if (!id) {
      refuse(req, res, 400, RpcCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required', bodyId);
      return undefined;
    }
    const session = gateway.findSession(id, principalOf(res));
    const slug = req.params['slug'] as string | undefined;
    if (session && session.slug === slug) return session;
    // Not here: another replica may hold it (forwarded there, which answers).
    const outcome =
      !session && options.forwarder
        ? await options.forwarder.forward(req, res, {
            sessionId: id,
            principal: principalOf(res),
            slug,
            body: req.body,
          })
        : { kind: 'not-found' as const };
    if (outcome.kind === 'answered') return undefined;
    if (outcome.kind === 'unavailable') {
      refuse(req, res, 503, RpcCode.ServerError, outcome.message, bodyId);
      return undefined;
    }
    // Unknown, ended, another credential's (another user's, or the same user's other key or
    // OAuth grant), or another endpoint's session: 404, so the client re-initializes.
    refuse(req, res, 404, RpcCode.SessionNotFound, 'Session not found', bodyId);
    return undefined;
  };

  // Every method on every MCP path passes these first, in this order (see the doc above).
  const admission = [traceMcpRequest, checkHost, checkOrigin, auth, authErrors, resolveServer];

  router.post(paths, ...admission, parseBody, async (req: Request, res: Response) => {
    const body: unknown = req.body;
    const messages = Array.isArray(body) ? body : [body];
    if (!messages.length || !messages.every(isMessage)) {
      return refuse(
        req,
        res,
        400,
        RpcCode.InvalidRequest,
        'Invalid Request: body is not a JSON-RPC message',
        (body as { id?: unknown })?.id,
      );
    }
    try {
      if (options.admit && !isInternalHop(res)) {
        const admitted = await options.admit(req, res, {
          principal: principalOf(res),
          slug: req.params['slug'] as string | undefined,
          toolCalls: toolCallsOf(messages, req.params['slug'] as string | undefined),
          rpcId: Array.isArray(body) ? null : (body as { id?: unknown }).id,
        });
        if (!admitted) return;
      }
      if (req.header('mcp-session-id')) {
        const session = await findSession(req, res);
        if (session)
          await gateway.inRequest(requestIdOf(req), () => session.transport.handleRequest(req, res, body));
        return;
      }
      if (!isInitializeRequest(body)) {
        return refuse(
          req,
          res,
          400,
          RpcCode.InvalidRequest,
          'Bad Request: no Mcp-Session-Id, and not an initialize request',
          (body as { id?: unknown })?.id,
        );
      }
      const server = res.locals['server'];
      const transport = server
        ? await gateway.createServerSession(server, context(req, res), body as never)
        : await gateway.createAggregateSession(context(req, res));
      await gateway.inRequest(requestIdOf(req), () => transport.handleRequest(req, res, body));
    } catch (err) {
      if (err instanceof SessionLimitReached) {
        // A limit, not a failure: the client is told which, and the refusal is audited (mcp.refused).
        return refuse(req, res, err.status, RpcCode.ServerError, err.message, (body as { id?: unknown })?.id);
      }
      failed(req, res, err, (body as { id?: unknown })?.id);
    }
  });

  // The standalone stream counts too (a reconnect loop is traffic); DELETE never does, so a
  // limited client can still end its session.
  const admitStream: RequestHandler = async (req, res, next) => {
    if (!options.admit || isInternalHop(res)) return next();
    const slug = req.params['slug'] as string | undefined;
    if (await options.admit(req, res, { principal: principalOf(res), slug, toolCalls: [], rpcId: null }))
      next();
  };

  /** GET (the standalone stream) and DELETE: the session's transport answers both. */
  const toSession = async (req: Request, res: Response) => {
    const session = await findSession(req, res);
    if (!session) return;
    try {
      await gateway.inRequest(requestIdOf(req), () => session.transport.handleRequest(req, res));
    } catch (err) {
      failed(req, res, err);
    }
  };
  router.get(paths, ...admission, admitStream, toSession);
  router.delete(paths, ...admission, toSession);

  return router;
}
