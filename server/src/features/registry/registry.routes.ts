import { Router } from 'express';
import {
  connectOAuthSchema,
  createServerSchema,
  putCredentialsSchema,
  slugSchema,
  updateServerSchema,
  type UpstreamStatus,
} from '@gateway/shared';
import { z } from 'zod';
import { AppError, notFound } from '../../platform/http/errors.ts';
import { parseOr400, validate } from '../../platform/http/validate.ts';
import { isAdmin, principalOf, requireRole, type Principal } from '../../core/principal.ts';
import {
  UpstreamOAuthError,
  type CredentialsService,
  type UpstreamOAuthService,
} from '../credentials/index.ts';
import { toServerView, type RegistryService, type ServerRecord } from './registry.service.ts';

const slugParams = z.object({ slug: slugSchema });
const threadQuery = z.object({ threadId: z.string().uuid().optional() }).strict();

/**
 * What the catalog asks about the caller's access (the access feature answers). Declared here
 * so the registry, which access rules point at, does not depend on the access feature.
 */
export interface ServerAccess {
  canViewServer(principal: Principal, server: ServerRecord): boolean;
  canCallTool(principal: Principal, server: ServerRecord, tool: string): boolean;
}

/** `/api/servers`: the catalog for everyone, administration for admins, a user's own credentials. */
export function registryRoutes(deps: {
  registry: RegistryService;
  access: ServerAccess;
  credentials: CredentialsService;
  /** Connecting users' upstream accounts on servers that use OAuth. */
  upstreamOAuth?: UpstreamOAuthService | undefined;
  /** Latest health-check status per server id, shown as `health` in the catalog. */
  upstreamHealth?: { statusesById(): Promise<ReadonlyMap<string, UpstreamStatus>> } | undefined;
  /** Chat threads: a thread-scoped credential is only for a thread of the caller's own. */
  chat?: { requireOwnThread(principal: Principal, threadId: string): Promise<void> } | undefined;
}): Router {
  const { registry, access, credentials } = deps;
  /** `health` is best effort: a catalog without it beats no catalog. */
  const statuses = () => deps.upstreamHealth?.statusesById().catch(() => undefined);
  const router = Router();
  const adminOnly = requireRole(isAdmin, 'admins');

  /** A server the caller may see, or 404 (never revealing servers they may not). */
  const visible = async (slug: string, res: { locals: Record<string, unknown> }) => {
    const server = await registry.get(slug);
    if (!server || !access.canViewServer(principalOf(res), server)) throw notFound(`server ${slug}`);
    return server;
  };

  /** 404 unless the thread (when one is named) is the caller's. */
  const ownThread = async (res: { locals: Record<string, unknown> }, threadId: string | undefined) => {
    if (threadId && deps.chat) await deps.chat.requireOwnThread(principalOf(res), threadId);
  };

  /** The catalog entry as this caller may see it: tools they may not call are not listed. */
  const viewFor = (p: Principal, s: ServerRecord) => {
    const view = toServerView(s);
    if (!view.capabilities || p.role === 'admin') return view;
    return {
      ...view,
      capabilities: {
        ...view.capabilities,
        tools: view.capabilities.tools.filter((t) => access.canCallTool(p, s, t.name)),
      },
    };
  };

  router.get('/api/servers', async (_req, res) => {
    const p = principalOf(res);
    const [all, health] = await Promise.all([registry.list(), statuses()]);
    res.json({
      servers: all
        .filter((s) => access.canViewServer(p, s))
        .map((s) => ({ ...viewFor(p, s), ...(health ? { health: health.get(s.id) ?? 'unknown' } : {}) })),
    });
  });

  router.get('/api/servers/:slug', async (req, res) => {
    const { slug } = parseOr400(slugParams, req.params, 'params');
    const [server, health] = await Promise.all([visible(slug, res), statuses()]);
    res.json({
      ...viewFor(principalOf(res), server),
      ...(health ? { health: health.get(server.id) ?? 'unknown' } : {}),
    });
  });

  router.post('/api/servers', adminOnly, validate({ body: createServerSchema }), async (req, res) => {
    res.status(201).json(await registry.create(principalOf(res), req.body));
  });

  router.patch('/api/servers/:slug', adminOnly, validate({ body: updateServerSchema }), async (req, res) => {
    const { slug } = parseOr400(slugParams, req.params, 'params');
    res.json(await registry.update(principalOf(res), slug, req.body));
  });

  router.delete('/api/servers/:slug', adminOnly, async (req, res) => {
    const { slug } = parseOr400(slugParams, req.params, 'params');
    await registry.delete(principalOf(res), slug);
    res.status(204).end();
  });

  router.post('/api/servers/:slug/discover', adminOnly, async (req, res) => {
    const { slug } = parseOr400(slugParams, req.params, 'params');
    res.json(await registry.discover(principalOf(res), slug));
  });

  router.put('/api/servers/:slug/credentials', validate({ body: putCredentialsSchema }), async (req, res) => {
    const { slug } = parseOr400(slugParams, req.params, 'params');
    const server = await visible(slug, res);
    await ownThread(res, (req.body as { threadId?: string }).threadId);
    res.json(await credentials.putUserValues(principalOf(res).userId, server, req.body));
  });

  router.delete('/api/servers/:slug/credentials', async (req, res) => {
    const { slug } = parseOr400(slugParams, req.params, 'params');
    const { threadId } = parseOr400(threadQuery, req.query, 'query');
    const server = await visible(slug, res);
    await credentials.deleteUserValues(principalOf(res).userId, server, threadId);
    res.status(204).end();
  });

  /** A server that uses OAuth, or a 400 saying it does not. */
  const oauthServer = async (slug: string, res: { locals: Record<string, unknown> }) => {
    const server = await visible(slug, res);
    if (!server.oauth || !deps.upstreamOAuth) {
      throw new AppError('bad_request', `server ${slug} does not use OAuth: nothing to connect`);
    }
    return { server, upstreamOAuth: deps.upstreamOAuth };
  };

  router.post(
    '/api/servers/:slug/oauth/connect',
    validate({ body: connectOAuthSchema }),
    async (req, res) => {
      const { slug } = parseOr400(slugParams, req.params, 'params');
      const { server, upstreamOAuth } = await oauthServer(slug, res);
      const body = req.body as { threadId?: string };
      await ownThread(res, body.threadId);
      try {
        const view = await upstreamOAuth.connect(server, principalOf(res).userId, body.threadId);
        res.set('Cache-Control', 'no-store').json(view);
      } catch (err) {
        if (!(err instanceof UpstreamOAuthError)) throw err;
        throw new AppError(err.status >= 500 ? 'upstream_unavailable' : 'bad_request', err.message);
      }
    },
  );

  router.delete('/api/servers/:slug/oauth', async (req, res) => {
    const { slug } = parseOr400(slugParams, req.params, 'params');
    const { threadId } = parseOr400(threadQuery, req.query, 'query');
    const { server, upstreamOAuth } = await oauthServer(slug, res);
    if (!(await upstreamOAuth.disconnect(server, principalOf(res).userId, threadId))) {
      throw notFound('OAuth connection');
    }
    res.status(204).end();
  });

  router.get('/api/credentials', async (_req, res) => {
    res.json({ credentials: await credentials.listForUser(principalOf(res).userId) });
  });

  return router;
}
