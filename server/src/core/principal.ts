import type { RequestHandler } from 'express';
import { AppError } from '../platform/http/errors.ts';

/** The built-in roles (the users table's `role` column holds one of them). */
export type Role = 'admin' | 'auditor' | 'user';

/**
 * Who is calling, as every feature sees it. Built by an authenticator (API key, OAuth
 * access token, web session) and attached to the request as `res.locals.principal`.
 */
export interface Principal {
  readonly userId: string;
  readonly displayName: string;
  readonly role: Role;
  /** Groups from the identity provider (access rules may grant a group). */
  readonly groups?: readonly string[] | undefined;
  /** How the caller proved who they are. */
  readonly via: 'api_key' | 'oauth' | 'session';
  readonly apiKeyId?: string | undefined;
  readonly oauthClientId?: string | undefined;
  /** The OAuth grant the access token was issued under (tokens from before grant ids carry none). */
  readonly oauthGrantId?: string | undefined;
  /** Server slugs this credential is limited to; undefined: no limit beyond the user's access. */
  readonly serverScope?: readonly string[] | undefined;
}

/**
 * Whether two principals are the same credential: same user, same way in, same API key or
 * OAuth client and grant, same server scope. An MCP session is bound to the credential that
 * opened it, so a narrower key of the same user cannot ride a wider key's session.
 */
export function sameCredential(a: Principal, b: Principal): boolean {
  const scope = (p: Principal) => (p.serverScope ? [...p.serverScope].sort().join('\n') : undefined);
  return (
    a.userId === b.userId &&
    a.via === b.via &&
    a.apiKeyId === b.apiKeyId &&
    a.oauthClientId === b.oauthClientId &&
    a.oauthGrantId === b.oauthGrantId &&
    scope(a) === scope(b)
  );
}

/**
 * Whether the credential reaches everything its user may: not limited to some servers. Managing
 * the user's credentials (API keys) needs one, or a leaked narrow key could widen itself.
 */
export const isUnrestricted = (p: Principal) => p.serverScope === undefined;

export const isAdmin = (p: Principal) => p.role === 'admin';
export const canReadAudit = (p: Principal) => p.role === 'admin' || p.role === 'auditor';

/** The principal of an authenticated request. */
export function principalOf(res: { locals: Record<string, unknown> }): Principal {
  const p = res.locals['principal'] as Principal | undefined;
  if (!p) throw new AppError('unauthenticated', 'authentication required');
  return p;
}

/** Allows only principals the predicate accepts (403 otherwise). */
export function requireRole(check: (p: Principal) => boolean, what: string): RequestHandler {
  return (_req, res, next) => {
    next(check(principalOf(res)) ? undefined : new AppError('forbidden', `${what} only`));
  };
}
