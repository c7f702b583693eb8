import type { Principal } from '../auth/index.ts';

/** The part of a server that access decisions look at. */
export interface AccessTarget {
  slug: string;
  enabled: boolean;
}

/**
 * Who may use which server and tool. Decisions are made from memory on every request.
 * Today: admins and users may use every enabled server, narrowed by the credential's
 * server scope (API keys created for some servers only). Role- and tool-level rules plug
 * in here.
 */
export class AccessService {
  /** May the caller use this server through the gateway? */
  canUseServer(principal: Principal, server: AccessTarget): boolean {
    if (!server.enabled) return false;
    if (principal.serverScope && !principal.serverScope.includes(server.slug)) return false;
    return true;
  }

  /** May the caller call this tool of a server they may use? */
  canCallTool(principal: Principal, server: AccessTarget, _tool: string): boolean {
    return this.canUseServer(principal, server);
  }

  /** May the caller see this server's catalog entry over REST? Admins see every server. */
  canViewServer(principal: Principal, server: AccessTarget): boolean {
    if (principal.role === 'admin') return !principal.serverScope || principal.serverScope.includes(server.slug);
    return this.canUseServer(principal, server);
  }
}
