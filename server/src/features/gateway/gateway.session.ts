import type { DownstreamHttpTransport } from './gateway.transport.ts';
import type { Principal } from '../../core/principal.ts';
import type { ServerRecord } from '../registry/index.ts';
import type { GatewayAudit } from './gateway.audit.ts';
import type { GatewayDeps, SessionContext } from './gateway.ports.ts';
import type { AccessDecisions } from './gateway.policy.ts';
import type { GatewayUpstreams } from './gateway.upstreams.ts';

/** One downstream MCP session: its transport and what relays it. */
export interface GatewaySession {
  readonly id: string;
  readonly kind: 'server' | 'aggregate';
  readonly slug: string | undefined;
  readonly context: SessionContext;
  /** Upstream stdio processes the session holds (its server's, or one per stdio member of /mcp). */
  readonly stdio: number;
  readonly transport: DownstreamHttpTransport;
  /** Called when the GET stream opens/closes, so messages for it are buffered meanwhile. */
  standaloneStreamOpened(): void;
  standaloneStreamClosed(): void;
  close(): Promise<void>;
  /**
   * Applies the session's current principal and the current rules and catalog: a server
   * session whose server is no longer usable closes; an aggregate session drops the servers
   * that are not and tells the client its lists changed.
   */
  recheck(): Promise<void>;
  lastSeen: number;
}

/**
 * What a downstream session (a server's or the aggregate endpoint's) needs from the gateway
 * that owns it. The Gateway hands this to the sessions it creates, so sessions never import
 * the gateway service.
 */
export interface SessionHost {
  readonly config: GatewayDeps['config'];
  /** Access decisions for every request and list (see gateway.policy.ts). */
  readonly access: AccessDecisions;
  readonly upstreams: Pick<GatewayUpstreams, 'connect'>;
  readonly audit: Pick<GatewayAudit, 'settled' | 'notification' | 'noteRequest' | 'currentRequestId'>;
  /** Servers the principal may use through the aggregate endpoint (those found down left out). */
  usableServers(principal: Principal): Promise<ServerRecord[]>;
  /** What the principal may use of the server now ('' nothing; see AccessService.grantOf). */
  currentGrant(principal: Principal, slug: string): Promise<string>;
}
