import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Provider } from 'oidc-provider';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditSink } from '../audit/index.ts';
import { consentPage, errorPage } from './auth.pages.ts';
import type { WebAuth } from './auth.web.ts';
import { resourceFor } from './oauth.provider.ts';

const PROVIDER_PATHS = /^\/(oauth\/(?!interaction\/)|\.well-known\/openid-configuration$)/;

/** What the OAuth server's routes need; OAuthServer.routes() gives them. */
export interface OAuthRoutesDeps {
  provider: Provider;
  publicUrl: string;
  web: WebAuth;
  audit: AuditSink;
  logger: Logger;
  /** RFC 9728 protected resource metadata of an MCP endpoint. */
  resourceMetadata: (resource: string) => object;
}

/** Express routes of the OAuth server: the provider's own paths, metadata documents, and the interaction pages. */
export function oauthRoutes(d: OAuthRoutesDeps): Router {
  /** A route handler that never leaves a request hanging: a failure becomes an error page. */
  const handler = (fn: (req: Request, res: Response) => Promise<void>): RequestHandler => {
    return (req, res) => {
      fn(req, res).catch((err: unknown) => {
        const name = (err as Error).name;
        d.logger.warn({ err: (err as Error).message }, 'oauth interaction failed');
        if (!res.headersSent) {
          res
            .status(name === 'SessionNotFound' ? 400 : 500)
            .send(
              errorPage(
                'Sign-in failed',
                name === 'SessionNotFound'
                  ? 'This sign-in has expired. Start again from your client.'
                  : 'Something went wrong. Start again from your client.',
              ),
            );
        }
      });
    };
  };

  const { provider, publicUrl, web } = d;
  const router = Router();
  const callback = provider.callback();

  // RFC 9728: path-suffixed and root protected resource metadata.
  router.get(
    [
      '/.well-known/oauth-protected-resource',
      '/.well-known/oauth-protected-resource/mcp',
      '/.well-known/oauth-protected-resource/mcp/:slug',
    ],
    (req, res) => {
      const slug = req.params['slug'] as string | undefined;
      const resource = slug ? resourceFor(publicUrl, `/mcp/${slug}`) : `${publicUrl}/mcp`;
      if (!resource) return void res.status(404).json({ error: 'not_found' });
      res
        .set('Cache-Control', 'public, max-age=300')
        .set('Access-Control-Allow-Origin', '*')
        .json(d.resourceMetadata(resource));
    },
  );
  // RFC 8414 metadata: oidc-provider serves the OpenID discovery document, which is a superset.
  router.get('/.well-known/oauth-authorization-server', (req, res) => {
    req.url = '/.well-known/openid-configuration';
    void callback(req, res);
  });
  router.use((req, res, next) => {
    if (!PROVIDER_PATHS.test(req.path)) return next();
    void callback(req, res);
  });

  const form = express.urlencoded({ extended: false, limit: '16kb' });
  router.get(
    '/oauth/interaction/:uid',
    web.session,
    handler(async (req, res) => {
      const details = await provider.interactionDetails(req, res);
      const principal = await web.principalFromSession(req);
      if (!principal) {
        res.redirect(`/auth/login?returnTo=${encodeURIComponent(`/oauth/interaction/${details.uid}`)}`);
        return;
      }
      if (details.prompt.name === 'login') {
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId: principal.userId } },
          { mergeWithLastSubmission: false },
        );
        return;
      }
      if (details.session?.accountId !== principal.userId) {
        // Signed in as someone else since the flow began: start over as the current user.
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId: principal.userId } },
          { mergeWithLastSubmission: false },
        );
        return;
      }
      const client = await provider.Client.find(String(details.params['client_id']));
      const resources = ([] as string[]).concat(
        (details.params['resource'] as string | string[] | undefined) ?? [],
      );
      // The form's POST ends in a redirect to the client's redirect URI: CSP form-action
      // applies to that redirect too, so the client's origin (or scheme) must be allowed.
      const redirect = new URL(String(details.params['redirect_uri']));
      const target =
        redirect.protocol === 'http:' || redirect.protocol === 'https:' ? redirect.origin : redirect.protocol;
      res.set('Cache-Control', 'no-store');
      res.set(
        'Content-Security-Policy',
        `default-src 'self'; form-action 'self' ${target}; frame-ancestors 'none'; base-uri 'self'; object-src 'none'`,
      );
      res.send(
        consentPage({
          uid: details.uid,
          csrf: web.csrfToken(req),
          clientName: client?.clientName ?? String(details.params['client_id']),
          clientId: String(details.params['client_id']),
          redirectUri: String(details.params['redirect_uri']),
          resources: resources.length ? resources : [`${publicUrl}/mcp`],
          scopes: String(details.params['scope'] ?? '')
            .split(' ')
            .filter(Boolean),
          userName: principal.displayName,
        }),
      );
    }),
  );

  router.post(
    '/oauth/interaction/:uid/confirm',
    web.session,
    form,
    handler(async (req, res) => {
      const details = await provider.interactionDetails(req, res);
      const principal = await web.principalFromSession(req);
      if (
        !principal ||
        details.session?.accountId !== principal.userId ||
        !web.checkCsrf(req, (req.body as Record<string, unknown>)['_csrf'])
      ) {
        res
          .status(403)
          .send(
            errorPage(
              'Consent failed',
              'The form expired or you are signed in as someone else. Start again from your client.',
            ),
          );
        return;
      }
      const missing = details.prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      const grant = details.grantId
        ? ((await provider.Grant.find(details.grantId)) ??
          new provider.Grant({
            accountId: principal.userId,
            clientId: String(details.params['client_id']),
          }))
        : new provider.Grant({
            accountId: principal.userId,
            clientId: String(details.params['client_id']),
          });
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      d.audit.record({
        category: 'auth',
        action: 'oauth.consent',
        status: 'ok',
        userId: principal.userId,
        oauthClientId: String(details.params['client_id']),
        ip: req.ip ?? null,
        details: { resources: Object.keys(missing.missingResourceScopes ?? {}) },
      });
      await provider.interactionFinished(
        req,
        res,
        { consent: { grantId } },
        { mergeWithLastSubmission: true },
      );
    }),
  );

  router.post(
    '/oauth/interaction/:uid/abort',
    web.session,
    form,
    handler(async (req, res) => {
      if (!web.checkCsrf(req, (req.body as Record<string, unknown>)['_csrf'])) {
        res.status(403).send(errorPage('Request failed', 'The form expired. Start again from your client.'));
        return;
      }
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the user denied access' },
        { mergeWithLastSubmission: false },
      );
    }),
  );
  return router;
}
