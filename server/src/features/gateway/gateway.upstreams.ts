import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Capabilities } from '@gateway/shared';
import type { Principal } from '../../core/principal.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { ResolvedCredentials } from '../credentials/index.ts';
import type { ServerRecord } from '../registry/index.ts';
import { rpcErrorOf, RpcCode, UpstreamAuthorizationRequired } from './gateway.errors.ts';
import type { GatewayDeps, SessionContext } from './gateway.ports.ts';
import type { UpstreamTransport } from './mcp.relay.ts';
import { remoteUpstream, StdioPool, type UpstreamIdentity } from './upstream.connector.ts';
import { VERSION } from '../../platform/version.ts';

/** What one health probe learned (see Gateway.healthCheck). */
export interface HealthProbe {
  /** Round trip of the MCP `ping`, in milliseconds. */
  latencyMs: number;
  capabilities?: Capabilities;
  /** Why listing the capabilities failed, when it did (the server still answered ping). */
  capabilitiesError?: string;
}

/** Who health checks connect as: nobody in particular, so no user's credentials are used. */
const HEALTH_CHECK_CONTEXT: SessionContext = {
  principal: {
    userId: '00000000-0000-0000-0000-000000000000',
    displayName: 'health-check',
    role: 'admin',
    via: 'api_key',
  },
};

/** Lists everything an upstream offers (every page of every list its capabilities announce). */
async function listCapabilities(
  client: Client,
  protocolVersion: string,
  timeout: number,
): Promise<Capabilities> {
  const caps = client.getServerCapabilities() ?? {};
  const all = async <T>(fn: (cursor?: string) => Promise<{ nextCursor?: string } & T>, key: keyof T) => {
    const items: unknown[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 50; page++) {
      const r = await fn(cursor);
      items.push(...((r[key] as unknown[]) ?? []));
      cursor = r.nextCursor;
      if (!cursor) break;
    }
    return items;
  };
  const opts = { timeout };
  const [tools, resources, resourceTemplates, prompts] = await Promise.all([
    caps.tools ? all((cursor) => client.listTools({ cursor }, opts), 'tools') : [],
    caps.resources ? all((cursor) => client.listResources({ cursor }, opts), 'resources') : [],
    caps.resources
      ? all((cursor) => client.listResourceTemplates({ cursor }, opts), 'resourceTemplates')
      : [],
    caps.prompts ? all((cursor) => client.listPrompts({ cursor }, opts), 'prompts') : [],
  ]);
  const info = client.getServerVersion();
  return {
    protocolVersion,
    serverInfo: { name: info?.name ?? 'unknown', version: info?.version ?? 'unknown' },
    capabilities: caps as Record<string, unknown>,
    ...(client.getInstructions() ? { instructions: client.getInstructions()! } : {}),
    tools: tools as Capabilities['tools'],
    resources: resources as Capabilities['resources'],
    resourceTemplates: resourceTemplates as Capabilities['resourceTemplates'],
    prompts: prompts as Capabilities['prompts'],
  };
}

/** A connection to one upstream for one session, with the credential scope used (for audit). */
export interface UpstreamConnection {
  transport: UpstreamTransport;
  credentialScope: string;
  /** Secret values this connection carries (credential and static values), scrubbed from audit records. */
  secrets: string[];
}

/** Secret values a connection carries: user values of secret fields, and static values (8+ characters). */
function secretValues(server: ServerRecord, userValues: Record<string, string>): string[] {
  const secretFields = new Set(server.credentialFields.filter((f) => f.secret !== false).map((f) => f.name));
  const t = server.resolvedTransport;
  const statics = Object.values(t.type === 'stdio' ? t.env : t.headers);
  const fromUser = Object.entries(userValues)
    .filter(([k]) => secretFields.has(k))
    .map(([, v]) => v);
  // Short values (ports, flags) would mangle unrelated text and protect nothing.
  return [...new Set([...fromUser, ...statics])].filter((v) => v.length >= 8);
}

/**
 * The gateway's way to upstreams: connections under a caller's credentials (stdio from the
 * warm pool, remote through the SSRF-guarded fetch, OAuth through the user's own account),
 * and the gateway acting as a client itself for discovery and health checks.
 */
export class GatewayUpstreams {
  readonly #deps: GatewayDeps;
  readonly #pool: StdioPool;

  constructor(deps: GatewayDeps, logger: Logger) {
    this.#deps = deps;
    this.#pool = new StdioPool({
      size: deps.config.stdioPoolSize,
      idleMs: deps.config.stdioPoolIdleMs,
      logger,
    });
  }

  /** Stdio processes started ahead of time, waiting for a session. */
  get warmCount(): number {
    return this.#pool.warmCount;
  }

  /**
   * Opens an upstream transport for `server` under the caller's credentials.
   * `pooled: false` spawns a fresh stdio process instead of taking a warm one;
   * `userCredentials: false` connects with the server's static values only (health checks).
   */
  async connect(
    server: ServerRecord,
    context: SessionContext,
    sessionId?: string,
    options: { pooled?: boolean; userCredentials?: boolean } = {},
  ): Promise<UpstreamConnection> {
    const resolved: ResolvedCredentials =
      options.userCredentials === false
        ? { values: {}, scope: 'none' }
        : await this.#deps.credentials.resolveForUse(server, {
            userId: context.principal.userId,
            threadId: context.threadId,
            sessionId,
          });
    const missing = server.credentialFields.filter((f) => f.required && !resolved.values[f.name]);
    if (missing.length) {
      throw new Error(
        `no credentials stored for ${server.slug}: set ${missing.map((f) => f.name).join(', ')} ` +
          `with PUT /api/servers/${server.slug}/credentials`,
      );
    }
    const identity: UpstreamIdentity = {
      userId: context.principal.userId,
      threadId: context.threadId,
      values: resolved.values,
    };
    const secrets = secretValues(server, resolved.values);
    if (server.resolvedTransport.type === 'stdio') {
      const transport =
        options.pooled === false
          ? new StdioClientTransport(StdioPool.spawnParams(server, identity))
          : this.#pool.take(server, identity);
      return { transport, credentialScope: resolved.scope, secrets };
    }
    await this.#deps.guardUrl(server.resolvedTransport.url);
    if (server.oauth && this.#deps.upstreamOAuth && options.userCredentials !== false) {
      // The user's own upstream account: the SDK transport sends its tokens and refreshes
      // them; when the user must (re)authorize, the client gets a link to do it.
      const { provider, scope } = await this.#deps.upstreamOAuth.providerFor(server, {
        userId: context.principal.userId,
        threadId: context.threadId,
        sessionId,
      });
      const upstreamAuth = {
        provider,
        authorizationRequired: () => new UpstreamAuthorizationRequired(server.slug, provider.connectUrl),
        wrapFetch: (f: typeof fetch) => provider.serializedRefreshFetch(f),
      };
      return {
        transport: remoteUpstream(server, identity, this.#deps.upstreamFetch, upstreamAuth),
        credentialScope: scope,
        secrets,
      };
    }
    return {
      transport: remoteUpstream(server, identity, this.#deps.upstreamFetch),
      credentialScope: resolved.scope,
      secrets,
    };
  }

  /**
   * Capability discovery for the registry: connects as `principal` (or with no user
   * credentials), lists everything, disconnects. Uses the SDK client: discovery is the
   * gateway acting as a client itself, not relaying anyone.
   */
  async discover(server: ServerRecord, principal: Principal | undefined): Promise<Capabilities> {
    const context: SessionContext = {
      principal: principal ?? {
        userId: '00000000-0000-0000-0000-000000000000',
        displayName: 'discovery',
        role: 'admin',
        via: 'api_key',
      },
    };
    const timeout = this.#deps.config.connectTimeoutMs;
    const client = { name: 'mcp-gateway-discovery', timeout, userCredentials: principal !== undefined };
    return this.#asClient(server, context, client, (c, version) =>
      listCapabilities(c, version(), timeout),
    ).catch((err: unknown) => {
      // The capabilities error is shown to everyone who sees the server: not the admin's own link.
      if (rpcErrorOf(err)?.code === RpcCode.AuthorizationRequired) {
        throw new Error(
          `Server "${server.slug}" needs your authorization (OAuth): connect your account, then discover again`,
        );
      }
      throw err;
    });
  }

  /**
   * Health probe for the monitoring feature: connects with no user credentials on a fresh
   * upstream (never a user's warm process), pings, lists the capabilities, disconnects.
   * Rejects when connecting or the ping fails; a failed listing is reported, not thrown.
   * `timeoutMs` bounds each step (initialize, ping, each list call).
   */
  async healthCheck(server: ServerRecord, options: { timeoutMs: number }): Promise<HealthProbe> {
    const timeout = options.timeoutMs;
    const client = { name: 'mcp-gateway-health', timeout, userCredentials: false };
    return this.#asClient(server, HEALTH_CHECK_CONTEXT, client, async (c, version) => {
      const started = performance.now();
      await c.ping({ timeout });
      const latencyMs = performance.now() - started;
      try {
        return { latencyMs, capabilities: await listCapabilities(c, version(), timeout) };
      } catch (err) {
        return { latencyMs, capabilitiesError: (err as Error).message || 'listing failed' };
      }
    });
  }

  /**
   * Runs `use` with the SDK client connected to a fresh upstream of `server`, then closes
   * it. Discovery and health checks are the gateway acting as a client itself.
   */
  async #asClient<T>(
    server: ServerRecord,
    context: SessionContext,
    options: { name: string; timeout: number; userCredentials?: boolean },
    use: (client: Client, protocolVersion: () => string) => Promise<T>,
  ): Promise<T> {
    const { transport } = await this.connect(server, context, undefined, {
      pooled: false,
      userCredentials: options.userCredentials ?? true,
    }).catch((err: unknown) => {
      throw new Error(`cannot connect: ${(err as Error).message}`);
    });
    let protocolVersion = 'unknown';
    const record = transport as { setProtocolVersion?: (v: string) => void };
    const original = record.setProtocolVersion?.bind(transport);
    record.setProtocolVersion = (v: string) => {
      protocolVersion = v;
      original?.(v);
    };
    const client = new Client({ name: options.name, version: VERSION }, { capabilities: {} });
    try {
      await client.connect(transport, { timeout: options.timeout });
      return await use(client, () => protocolVersion);
    } finally {
      await client.close().catch(() => {});
    }
  }

  /** Ends every warm process (shutdown). */
  async close(): Promise<void> {
    await this.#pool.close();
  }
}
