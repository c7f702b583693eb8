import { randomBytes, timingSafeEqual } from 'node:crypto';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import session from 'express-session';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import passport from 'passport';
import { Strategy as OidcStrategy, type Profile } from 'passport-openidconnect';
import type { MeView } from '@gateway/shared';
import { AppError } from '../../platform/http/errors.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditSink } from '../../core/audit.ts';
import type { KeysService } from '../keys/index.ts';
import type { UsersRepository } from '../users/index.ts';
import type { Authenticator } from './auth.middleware.ts';
import { AUTH_CSS, errorPage, localLoginPage } from './auth.pages.ts';
import type { AuthRepository } from './auth.repository.ts';
import type { Principal, Role } from '../../core/principal.ts';
import { DatabaseSessionStore } from './session.store.ts';

declare module 'express-session' {
  interface SessionData {
    userId?: string;
    csrf?: string;
    returnTo?: string;
  }
}

/** OpenID Connect settings of the organisation's identity provider. */
export interface OidcSettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
  scopes: string[];
  groupsClaim: string;
  /** Group name -> role; the highest role of the user's groups wins. */
  roleMap: Record<string, Role>;
}

export interface WebAuthOptions {
  publicUrl: () => string;
  secureCookies: boolean;
  sessionSecret: string;
  sessionTtlMs: number;
  oidc: OidcSettings | undefined;
  users: UsersRepository;
  keys: KeysService;
  repo: AuthRepository;
  audit: AuditSink;
  logger: Logger;
  /** Called when a sign-in changed a known user's role or groups (open sessions are re-checked). */
  onUserChange?: () => void;
}

const ROLE_RANK: Record<Role, number> = { user: 0, auditor: 1, admin: 2 };

/** The role a set of groups maps to (highest wins; `user` by default). */
export function roleForGroups(groups: readonly string[], roleMap: Record<string, Role>): Role {
  let role: Role = 'user';
  for (const g of groups) {
    const r = roleMap[g];
    if (r && ROLE_RANK[r] > ROLE_RANK[role]) role = r;
  }
  return role;
}

/** Only same-site relative paths may be returned to after sign-in (no open redirects). */
export function safeReturnTo(value: unknown): string {
  const v = typeof value === 'string' ? value : '';
  return /^\/(?!\/)[^\s\\]*$/.test(v) ? v : '/';
}

const sameToken = (a: string | undefined, b: unknown) =>
  typeof b === 'string' && !!a && a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * Web sign-in: OpenID Connect through passport-openidconnect when an identity provider is
 * configured, otherwise local sign-in of the bootstrap admin. Sessions live in the
 * database; cookies are HttpOnly, SameSite=Lax, and `__Host-`-prefixed and Secure when
 * served over TLS. Every state-changing form post and every cookie-authenticated API write
 * must carry the session's CSRF token.
 */
export class WebAuth {
  readonly #o: WebAuthOptions;
  readonly #sessionMiddleware: RequestHandler;
  readonly cookieName: string;
  #strategyReady: Promise<void> | undefined;
  #idpJwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  readonly #passport = new passport.Passport();

  constructor(options: WebAuthOptions) {
    this.#o = options;
    this.cookieName = options.secureCookies ? '__Host-gw.sid' : 'gw.sid';
    this.#sessionMiddleware = session({
      name: this.cookieName,
      secret: options.sessionSecret,
      store: new DatabaseSessionStore(options.repo, options.sessionTtlMs),
      resave: false,
      saveUninitialized: false,
      rolling: true,
      proxy: undefined,
      cookie: {
        httpOnly: true,
        sameSite: 'lax',
        secure: options.secureCookies,
        path: '/',
        maxAge: options.sessionTtlMs,
      },
    });
  }

  /** Session middleware for the paths that use cookies (web UI, sign-in, OAuth interactions, REST). */
  get session(): RequestHandler {
    return this.#sessionMiddleware;
  }

  csrfToken(req: Request): string {
    req.session.csrf ??= randomBytes(24).toString('base64url');
    return req.session.csrf;
  }

  checkCsrf(req: Request, provided: unknown): boolean {
    return sameToken(req.session?.csrf, provided);
  }

  /** The signed-in user as a principal, or undefined. */
  async principalFromSession(req: Request): Promise<Principal | undefined> {
    const userId = req.session?.userId;
    if (!userId) return undefined;
    const user = await this.#o.users.findById(userId);
    if (!user || user.disabledAt) return undefined;
    return {
      userId: user.id,
      displayName: user.displayName,
      role: user.role,
      groups: user.groups,
      via: 'session',
    };
  }

  /**
   * REST authenticator for cookie sessions (used when there is no bearer token). Writes
   * need the X-CSRF-Token header: a cross-site form cannot set it.
   */
  sessionAuthenticator(): (req: Request) => Promise<Principal | 'csrf' | undefined> {
    return async (req) => {
      const principal = await this.principalFromSession(req);
      if (!principal) return undefined;
      const safe = req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS';
      if (!safe && !this.checkCsrf(req, req.headers['x-csrf-token'])) return 'csrf';
      return principal;
    };
  }

  async #ensureStrategy(): Promise<void> {
    const oidc = this.#o.oidc;
    if (!oidc) throw new AppError('not_found', 'no identity provider is configured');
    this.#strategyReady ??= (async () => {
      const res = await fetch(`${oidc.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, {
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok) throw new Error(`identity provider discovery failed: HTTP ${res.status}`);
      const meta = (await res.json()) as Record<string, string>;
      this.#idpJwks = createRemoteJWKSet(new URL(meta['jwks_uri']!));
      const strategy = new OidcStrategy(
        {
          issuer: meta['issuer']!,
          authorizationURL: meta['authorization_endpoint']!,
          tokenURL: meta['token_endpoint']!,
          userInfoURL: meta['userinfo_endpoint']!,
          clientID: oidc.clientId,
          clientSecret: oidc.clientSecret,
          callbackURL: `${this.#o.publicUrl()}/auth/callback`,
          scope: oidc.scopes.filter((s) => s !== 'openid'),
          nonce: 'true',
        } as never,
        // 9 arguments: passport-openidconnect then passes the raw ID token, whose signature we verify.
        ((
          issuer: string,
          uiProfile: Profile,
          _idProfile: Profile,
          _context: unknown,
          idToken: string,
          _accessToken: string,
          _refreshToken: string,
          _params: unknown,
          done: (err: unknown, user?: unknown) => void,
        ) => {
          this.#verifyLogin(issuer, uiProfile, idToken).then(
            (user) => done(null, user),
            (err: unknown) => done(err),
          );
        }) as never,
      );
      this.#passport.use('oidc', strategy);
    })().catch((err: unknown) => {
      this.#strategyReady = undefined;
      throw err;
    });
    return this.#strategyReady;
  }

  async #verifyLogin(issuer: string, profile: Profile, idToken: string): Promise<{ id: string }> {
    const oidc = this.#o.oidc!;
    // passport-openidconnect does not check the ID token's signature; we do.
    const { payload } = await jwtVerify(idToken, this.#idpJwks!, { issuer, audience: oidc.clientId });
    const json = (profile as { _json?: Record<string, unknown> })._json ?? {};
    const rawGroups = payload[oidc.groupsClaim] ?? json[oidc.groupsClaim];
    const groups = Array.isArray(rawGroups)
      ? rawGroups.map(String)
      : typeof rawGroups === 'string'
        ? [rawGroups]
        : [];
    const email = (payload['email'] ?? json['email']) as string | undefined;
    const name = (payload['name'] ?? json['name'] ?? profile.displayName ?? email ?? payload.sub) as string;
    const subject = `${issuer}|${payload.sub}`;
    const before = await this.#o.users.findBySubject(subject);
    const user = await this.#o.users.upsertBySubject({
      subject,
      displayName: name,
      email: email ?? null,
      role: roleForGroups(groups, oidc.roleMap),
      groups,
    });
    // The identity provider is where roles and groups change: the user's other open
    // sessions and cached keys must not keep what this sign-in replaced.
    if (before && (before.role !== user.role || before.groups.join('\n') !== user.groups.join('\n')))
      this.#o.onUserChange?.();
    if (user.disabledAt) throw new AppError('forbidden', 'this account is disabled');
    return { id: user.id };
  }

  #signIn(req: Request, userId: string): Promise<void> {
    return new Promise((resolve, reject) => {
      // A new session id on sign-in (session fixation).
      const returnTo = req.session.returnTo;
      req.session.regenerate((err) => {
        if (err) return reject(err as Error);
        req.session.userId = userId;
        req.session.csrf = randomBytes(24).toString('base64url');
        req.session.returnTo = returnTo;
        req.session.save((e) => (e ? reject(e as Error) : resolve()));
      });
    });
  }

  routes(): Router {
    const router = Router();
    const form = express.urlencoded({ extended: false, limit: '16kb' });
    router.get('/auth/assets/auth.css', (_req, res) => {
      res.type('text/css').set('Cache-Control', 'public, max-age=3600').send(AUTH_CSS);
    });

    router.get('/auth/login', async (req, res, next) => {
      req.session.returnTo = safeReturnTo(req.query['returnTo']);
      if (!this.#o.oidc) {
        res
          .set('Cache-Control', 'no-store')
          .send(localLoginPage({ csrf: this.csrfToken(req), returnTo: req.session.returnTo }));
        return;
      }
      try {
        await this.#ensureStrategy();
      } catch (err) {
        this.#o.logger.error({ err: (err as Error).message }, 'identity provider unavailable');
        res
          .status(502)
          .send(
            errorPage('Sign-in unavailable', 'The identity provider cannot be reached. Try again later.'),
          );
        return;
      }
      this.#passport.authenticate('oidc', { session: false })(req, res, next);
    });

    router.get('/auth/callback', async (req, res, next) => {
      try {
        await this.#ensureStrategy();
      } catch {
        res.status(502).send(errorPage('Sign-in unavailable', 'The identity provider cannot be reached.'));
        return;
      }
      this.#passport.authenticate(
        'oidc',
        { session: false },
        (err: unknown, user: { id: string } | false, info: { message?: string } | undefined) => {
          if (err || !user) {
            const reason = (err as Error)?.message ?? info?.message ?? 'sign-in failed';
            this.#o.audit.record({
              category: 'auth',
              action: 'auth.login',
              status: 'denied',
              ip: req.ip ?? null,
              error: reason,
            });
            res.status(err ? 502 : 403).send(errorPage('Sign-in failed', reason));
            return;
          }
          this.#signIn(req, user.id).then(() => {
            this.#o.audit.record({
              category: 'auth',
              action: 'auth.login',
              status: 'ok',
              userId: user.id,
              ip: req.ip ?? null,
              details: { method: 'oidc' },
            });
            const to = safeReturnTo(req.session.returnTo);
            delete req.session.returnTo;
            res.redirect(to);
          }, next);
        },
      )(req, res, next);
    });

    router.post('/auth/local', form, async (req, res, next) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const returnTo = safeReturnTo(body['returnTo']);
      if (this.#o.oidc)
        return next(
          new AppError('not_found', 'local sign-in is disabled when an identity provider is configured'),
        );
      if (!this.checkCsrf(req, body['_csrf'])) {
        res.status(403).send(errorPage('Sign-in failed', 'The form expired. Go back and try again.'));
        return;
      }
      const token = typeof body['token'] === 'string' ? body['token'] : '';
      const result = token ? await this.#o.keys.authenticate(token) : { rejected: 'missing' };
      // Only an unrestricted admin key: a web session can do everything, so a key scoped to
      // some servers must not turn into one.
      const ok = 'principal' in result && result.principal.role === 'admin' && !result.principal.serverScope;
      if (!ok) {
        this.#o.audit.record({
          category: 'auth',
          action: 'auth.login',
          status: 'denied',
          ip: req.ip ?? null,
          error: 'bad local credential',
        });
        res.status(401).send(
          localLoginPage({
            csrf: this.csrfToken(req),
            returnTo,
            error: 'That key is not an unrestricted admin API key.',
          }),
        );
        return;
      }
      req.session.returnTo = returnTo;
      await this.#signIn(req, result.principal.userId);
      this.#o.audit.record({
        category: 'auth',
        action: 'auth.login',
        status: 'ok',
        userId: result.principal.userId,
        ip: req.ip ?? null,
        details: { method: 'local' },
      });
      res.redirect(303, returnTo);
    });

    router.post('/auth/logout', form, (req, res, next) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (!this.checkCsrf(req, body['_csrf'] ?? req.headers['x-csrf-token'])) {
        res.status(403).send(errorPage('Sign-out failed', 'The form expired. Go back and try again.'));
        return;
      }
      const userId = req.session.userId;
      req.session.destroy((err) => {
        if (err) return next(err);
        this.#o.audit.record({
          category: 'auth',
          action: 'auth.logout',
          status: 'ok',
          userId: userId ?? null,
          ip: req.ip ?? null,
        });
        res.clearCookie(this.cookieName, {
          path: '/',
          httpOnly: true,
          sameSite: 'lax',
          secure: this.#o.secureCookies,
        });
        res.redirect(303, '/');
      });
    });
    return router;
  }

  /** `GET /api/me`. */
  me(req: Request, res: Response, principal: Principal, email: string | null): MeView {
    return {
      id: principal.userId,
      displayName: principal.displayName,
      email,
      role: principal.role,
      groups: [...(principal.groups ?? [])],
      via: principal.via,
      ...(principal.via === 'session' ? { csrfToken: this.csrfToken(req) } : {}),
    };
  }
}

export type { Authenticator };
