import type { Principal } from '../../core/principal.ts';
import type { UsersRepository } from '../users/index.ts';
import type { OAuthGrantStatus } from './oauth.grants.ts';

/**
 * Re-reads what a principal was built from: the user (role, groups, not disabled), and the
 * credential (the API key not revoked or expired, the OAuth grant still standing). Open MCP
 * sessions keep the principal of their latest HTTP request; when users, keys, grants or
 * rules change, the gateway asks here for each open session, so a demotion or a revocation
 * reaches sessions that send nothing (and the chat's in-process ones, which have no HTTP
 * request at all). Not on the per-message path: only on changes.
 */
export class LivePrincipals {
  readonly #users: Pick<UsersRepository, 'findById'>;
  readonly #keys: { isActive(id: string): Promise<boolean> };
  readonly #grants: Pick<OAuthGrantStatus, 'isLive'>;

  constructor(deps: {
    users: Pick<UsersRepository, 'findById'>;
    keys: { isActive(id: string): Promise<boolean> };
    grants: Pick<OAuthGrantStatus, 'isLive'>;
  }) {
    this.#users = deps.users;
    this.#keys = deps.keys;
    this.#grants = deps.grants;
  }

  /** The principal as it stands now, or undefined when its user or credential is gone. */
  async refresh(principal: Principal): Promise<Principal | undefined> {
    const user = await this.#users.findById(principal.userId);
    if (!user || user.disabledAt) return undefined;
    if (principal.via === 'api_key' && principal.apiKeyId && !(await this.#keys.isActive(principal.apiKeyId)))
      return undefined;
    if (
      principal.via === 'oauth' &&
      principal.oauthGrantId &&
      !(await this.#grants.isLive(principal.oauthGrantId))
    )
      return undefined;
    return { ...principal, displayName: user.displayName, role: user.role, groups: user.groups };
  }
}
