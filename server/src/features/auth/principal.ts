import type { Role } from '../users/index.ts';

/**
 * Who is calling, as every feature sees it. Built by an authenticator (API key now, OAuth
 * access token and web session later) and attached to the request as `res.locals.principal`.
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
  /** Server slugs this credential is limited to; undefined: no limit beyond the user's access. */
  readonly serverScope?: readonly string[] | undefined;
}

export const isAdmin = (p: Principal) => p.role === 'admin';
export const canReadAudit = (p: Principal) => p.role === 'admin' || p.role === 'auditor';
