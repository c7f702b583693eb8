import type { Config } from '../../platform/config/config.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AccessService } from '../access/index.ts';
import type { AuditSink } from '../../core/audit.ts';
import type { Principal } from '../../core/principal.ts';
import type { CredentialsService, UpstreamOAuthService } from '../credentials/index.ts';
import type { RegistryService } from '../registry/index.ts';
import type { SessionDirectory } from './gateway.directory.ts';

/** Everything the gateway feature needs from the rest of the server, passed at start-up. */
export interface GatewayDeps {
  readonly config: Pick<
    Config['gateway'],
    | 'requestTimeoutMs'
    | 'connectTimeoutMs'
    | 'sessionIdleMs'
    | 'limits'
    | 'stdioPoolSize'
    | 'stdioPoolIdleMs'
    | 'allowedOrigins'
  >;
  /** The gateway's own public origin(s), always allowed as `Origin`. */
  readonly publicOrigins: readonly string[];
  readonly logger: Logger;
  readonly registry: RegistryService;
  readonly access: AccessService;
  readonly credentials: CredentialsService;
  /** Upstream OAuth (servers with `oauth`): the SDK auth provider of each user's connection. */
  readonly upstreamOAuth?: UpstreamOAuthService | undefined;
  readonly audit: AuditSink;
  /** `fetch` for remote upstreams: SSRF-checked on every connection and redirect. */
  readonly upstreamFetch: typeof fetch;
  /** Rejects when a remote URL is not allowed (checked before every connection). */
  readonly guardUrl: (url: string) => Promise<void>;
  /** Latest upstream health; servers found down are left out of the aggregate endpoint. */
  readonly upstreamHealth?: { downSlugs(): Promise<ReadonlySet<string>> } | undefined;
  /** Re-reads principals when users, keys or grants change; without it sessions keep theirs until their next HTTP request. */
  readonly principals?: PrincipalSource | undefined;
  /** With several replicas (Redis): where each session lives, so the others forward to its owner. */
  readonly directory?: Pick<SessionDirectory, 'register' | 'remove'> | undefined;
  /** Counts every settled MCP request (Prometheus); optional so tools and tests can leave it out. */
  readonly metrics?: GatewayMetrics | undefined;
}

/** Where the gateway reports each MCP request it relayed or answered (platform/metrics implements it). */
export interface GatewayMetrics {
  recordMcpRequest(sample: {
    /** Server slug; `_aggregate` for what the aggregate endpoint answers itself. */
    server: string;
    method: string;
    /** Tool or prompt name (tools/call, prompts/get); empty otherwise. */
    tool: string;
    /** ok, error, tool_error, denied, timeout, cancelled, failed. */
    status: string;
    latencyMs: number;
  }): void;
}

/** Re-reads a principal from its user and credential (auth's LivePrincipals implements it). */
export interface PrincipalSource {
  /** The principal as it stands now; undefined when its user or credential is gone. */
  refresh(principal: Principal): Promise<Principal | undefined>;
}

/** Who a downstream session acts for, and where it came from (for audit). */
export interface SessionContext {
  /**
   * The session's CURRENT principal: replaced by the one each HTTP request authenticated
   * (the same credential, with the role and groups as they are now) and by the re-check
   * after a change (Gateway.recheckSessions). Read it at the moment of each decision, never
   * copy it.
   */
  principal: Principal;
  /** Chat thread whose credentials apply (chat sessions); undefined for external clients. */
  readonly threadId?: string | undefined;
  readonly ip?: string | undefined;
}
