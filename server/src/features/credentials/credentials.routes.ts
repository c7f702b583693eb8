import { Router, type Request, type Response } from 'express';
import { rotateKeysSchema } from '@gateway/shared';
import { validate } from '../../platform/http/validate.ts';
import { isAdmin, principalOf, requireRole } from '../../core/principal.ts';
import { continuePage, errorPage, successPage, type WebAuth } from '../auth/index.ts';
import { UpstreamOAuthError, type UpstreamOAuthService } from './upstream-oauth.service.ts';
import type { CredentialsRotation } from './credentials.rotation.ts';

/**
 * `POST /api/admin/keys/rotate` (admins): re-wraps every sealed record under the current
 * master key and answers with the counts. This is how to rotate on the embedded database,
 * which only the running server may open; on PostgreSQL `npm run keys:rotate` does the same.
 */
export function keyRotationRoutes(deps: { rotation: CredentialsRotation }): Router {
  const router = Router();
  router.post(
    '/api/admin/keys/rotate',
    requireRole(isAdmin, 'admins'),
    validate({ body: rotateKeysSchema }),
    async (req, res) => {
      const body = req.body as { batchSize: number };
      const report = await deps.rotation.rewrapAll({
        trigger: 'api',
        batchSize: body.batchSize,
        principal: principalOf(res),
      });
      res.set('Cache-Control', 'no-store').json(report);
    },
  );
  return router;
}

const queryText = (req: Request, name: string): string | undefined => {
  const v = req.query[name];
  return typeof v === 'string' && v.length <= 4096 ? v : undefined;
};

/**
 * The browser side of connecting an upstream account (pages, signed-in users only):
 * `GET /oauth/upstream/start?state=` leads the user to the upstream's authorization server
 * (the link a client gets in its "needs authorization" error), and
 * `GET /oauth/upstream/callback` is where that server sends them back with the code.
 * Both require the gateway's web session (sign-in first, then back here), and the
 * authorization must be the signed-in user's own.
 */
export function upstreamOAuthRoutes(deps: { upstreamOAuth: UpstreamOAuthService; web: WebAuth }): Router {
  const { upstreamOAuth, web } = deps;
  const router = Router();
  const signedIn = async (req: Request, res: Response) => {
    const principal = await web.principalFromSession(req);
    if (!principal) res.redirect(`/auth/login?returnTo=${encodeURIComponent(req.originalUrl)}`);
    return principal;
  };
  const fail = (res: Response, err: unknown) => {
    const known = err instanceof UpstreamOAuthError;
    res
      .status(known ? err.status : 500)
      .send(errorPage('Connection failed', known ? err.message : 'Something went wrong. Connect again.'));
  };

  router.get('/oauth/upstream/start', web.session, async (req, res) => {
    res.set('Cache-Control', 'no-store');
    try {
      const principal = await signedIn(req, res);
      if (!principal) return;
      const state = queryText(req, 'state');
      if (!state) throw new UpstreamOAuthError('the link has no state parameter');
      const { authorizationUrl, server } = await upstreamOAuth.start(state, principal.userId);
      res.send(
        continuePage({
          title: `Connect ${server.name}`,
          message:
            `${server.name} needs your permission before the gateway can use it for you. ` +
            `Continue to sign in at ${new URL(authorizationUrl).host} and allow access; you will come back here.`,
          href: authorizationUrl,
          label: 'Continue',
        }),
      );
    } catch (err) {
      fail(res, err);
    }
  });

  router.get('/oauth/upstream/callback', web.session, async (req, res) => {
    res.set('Cache-Control', 'no-store');
    try {
      const principal = await signedIn(req, res);
      if (!principal) return;
      const target = await upstreamOAuth.callback(
        { state: queryText(req, 'state'), code: queryText(req, 'code'), error: queryText(req, 'error') },
        principal.userId,
      );
      res.send(
        successPage(
          'Connected',
          `Your account at ${target.name} is connected to the gateway. Go back to your MCP client or chat and try again.`,
        ),
      );
    } catch (err) {
      fail(res, err);
    }
  });
  return router;
}
