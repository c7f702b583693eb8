import {
  createServerSchema,
  type Capabilities,
  type CreateServer,
  type OAuthSettings,
  type ServerView,
  type TransportConfig,
  type UpdateServer,
} from '@gateway/shared';
import { Snapshot } from '../../platform/cache/snapshot.ts';
import { AppError, conflict, notFound } from '../../platform/http/errors.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditSink } from '../../core/audit.ts';
import type { Principal } from '../../core/principal.ts';
import type { CredentialsService } from '../credentials/index.ts';
import type { RegistryRepository, ServerRow } from './registry.repository.ts';
import type { StoredOAuthSettings } from './registry.schema.ts';

/** How long this process trusts its copy of the registry before reloading it. */
const CACHE_TTL_MS = 5_000;

/** A registered server with its static secrets opened: what a connector needs. */
export interface ServerRecord extends ServerRow {
  /** Transport with static env/header values from the vault filled back in. */
  readonly resolvedTransport: TransportConfig;
}

/** Connects to an upstream as `principal` and lists what it offers. Provided by the gateway. */
export type Discoverer = (server: ServerRecord, principal: Principal | undefined) => Promise<Capabilities>;

/** Checks a remote URL against the SSRF policy; rejects with a message naming the problem. */
export type UrlGuard = (url: string) => Promise<void>;

function staticValues(t: TransportConfig): Record<string, string> {
  return t.type === 'stdio' ? t.env : t.headers;
}

/** OAuth settings as stored: the client secret goes to the vault, only whether it is set stays. */
function storedOAuth(o: OAuthSettings): StoredOAuthSettings {
  return {
    scopes: o.scopes,
    ...(o.clientId ? { clientId: o.clientId } : {}),
    clientSecretSet: Boolean(o.clientSecret),
  };
}

/** The transport as stored: static values moved to the vault, names kept with empty values. */
function stripValues(t: TransportConfig): TransportConfig {
  const blank = (o: Record<string, string>) => Object.fromEntries(Object.keys(o).map((k) => [k, '']));
  return t.type === 'stdio' ? { ...t, env: blank(t.env) } : { ...t, headers: blank(t.headers) };
}

export function toServerView(row: ServerRow): ServerView {
  const t = row.transport;
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    description: row.description,
    transport:
      t.type === 'stdio'
        ? { type: 'stdio', command: t.command, args: t.args, envNames: Object.keys(t.env), cwd: t.cwd }
        : { type: t.type, url: t.url, headerNames: Object.keys(t.headers) },
    credentialFields: row.credentialFields,
    enabled: row.enabled,
    threadIsolated: row.threadIsolated,
    sensitiveTools: row.sensitiveTools,
    oauth: row.oauth
      ? {
          scopes: row.oauth.scopes,
          clientId: row.oauth.clientId ?? null,
          clientSecretSet: row.oauth.clientSecretSet,
        }
      : null,
    source: row.source,
    capabilities: row.capabilities ?? null,
    capabilitiesAt: row.capabilitiesAt?.toISOString() ?? null,
    capabilitiesError: row.capabilitiesError ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/**
 * The registry of MCP servers: CRUD with validation, static secrets sealed in the vault,
 * capability discovery cached with its time. Reads are cached in memory (the gateway looks
 * servers up on every session) and invalidated on every change made through this service.
 */
export class RegistryService {
  readonly #repo: RegistryRepository;
  readonly #credentials: CredentialsService;
  readonly #audit: AuditSink;
  readonly #logger: Logger;
  readonly #guardUrl: UrlGuard;
  #discoverer: Discoverer | undefined;
  readonly #onChange: (() => void) | undefined;
  // Changes made through this process invalidate at once; changes made by another replica
  // (or capabilities refreshed by the workers process) show up within CACHE_TTL_MS. Past
  // it, the old copy answers while the reload runs, so lookups never wait on the database.
  readonly #snapshot: Snapshot<Map<string, ServerRecord>>;

  constructor(deps: {
    repo: RegistryRepository;
    credentials: CredentialsService;
    audit: AuditSink;
    logger: Logger;
    guardUrl: UrlGuard;
    /** Called after every change made through this service (to tell other processes). */
    onChange?: (() => void) | undefined;
  }) {
    this.#onChange = deps.onChange;
    this.#repo = deps.repo;
    this.#credentials = deps.credentials;
    this.#audit = deps.audit;
    this.#logger = deps.logger.child({ feature: 'registry' });
    this.#guardUrl = deps.guardUrl;
    this.#snapshot = new Snapshot(() => this.#loadAll(), {
      ttlMs: CACHE_TTL_MS,
      onBackgroundError: (err) => this.#logger.warn({ err }, 'could not reload the registry'),
    });
  }

  /** Set once at start-up (the gateway depends on the registry, so it is wired afterwards). */
  setDiscoverer(discoverer: Discoverer): void {
    this.#discoverer = discoverer;
  }

  async #all(): Promise<Map<string, ServerRecord>> {
    return this.#snapshot.get();
  }

  async #loadAll(): Promise<Map<string, ServerRecord>> {
    const rows = await this.#repo.list();
    const map = new Map<string, ServerRecord>();
    for (const row of rows) map.set(row.slug, await this.#resolve(row));
    return map;
  }

  async #resolve(row: ServerRow): Promise<ServerRecord> {
    const values = await this.#credentials.getServerStatic(row.id);
    const t = row.transport;
    const fill = (o: Record<string, string>) =>
      Object.fromEntries(Object.keys(o).map((k) => [k, values[k] ?? '']));
    const resolvedTransport: TransportConfig =
      t.type === 'stdio' ? { ...t, env: fill(t.env) } : { ...t, headers: fill(t.headers) };
    return { ...row, resolvedTransport };
  }

  /** Forgets this process's copy; the next lookup reads the database. */
  invalidate(): void {
    this.#snapshot.invalidate();
  }

  /** After a write here: forget the copy, and tell the other processes to do the same. */
  #changed(): void {
    this.#snapshot.invalidate();
    this.#onChange?.();
  }

  async get(slug: string): Promise<ServerRecord | undefined> {
    return (await this.#all()).get(slug);
  }

  async require(slug: string): Promise<ServerRecord> {
    const s = await this.get(slug);
    if (!s) throw notFound(`server ${slug}`);
    return s;
  }

  async list(): Promise<ServerRecord[]> {
    return [...(await this.#all()).values()];
  }

  async #checkTransport(t: TransportConfig, field: string) {
    if (t.type === 'stdio') return;
    try {
      await this.#guardUrl(t.url);
    } catch (err) {
      throw new AppError('validation_failed', `${field}.url: ${(err as Error).message}`, {
        issues: [{ path: `${field}.url`, message: (err as Error).message }],
      });
    }
  }

  async create(
    principal: Principal | undefined,
    input: CreateServer,
    options: { source?: 'api' | 'file'; discover?: boolean } = {},
  ): Promise<ServerView> {
    await this.#checkTransport(input.transport, 'body.transport');
    if (await this.#repo.findBySlug(input.slug))
      throw conflict(`a server with slug ${input.slug} already exists`);
    let row: ServerRow;
    try {
      row = await this.#repo.insert({
        slug: input.slug,
        name: input.name,
        description: input.description,
        transport: stripValues(input.transport),
        credentialFields: input.credentialFields,
        enabled: input.enabled,
        threadIsolated: input.threadIsolated,
        sensitiveTools: input.sensitiveTools,
        oauth: input.oauth ? storedOAuth(input.oauth) : null,
        source: options.source ?? 'api',
      });
    } catch (err) {
      if (
        String((err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code) ===
        '23505'
      ) {
        throw conflict(`a server with slug ${input.slug} already exists`);
      }
      throw err;
    }
    await this.#credentials.putServerStatic(row.id, staticValues(input.transport));
    if (input.oauth?.clientId) {
      await this.#credentials.putServerOAuthClient(row.id, {
        clientId: input.oauth.clientId,
        clientSecret: input.oauth.clientSecret,
      });
    }
    this.#changed();
    this.#audit.record({
      category: 'admin',
      action: 'server.create',
      status: 'ok',
      userId: principal?.userId ?? null,
      apiKeyId: principal?.apiKeyId ?? null,
      serverSlug: row.slug,
      details: { source: row.source, transport: row.transport.type },
    });
    if (options.discover !== false && row.enabled) return this.discover(principal, row.slug);
    return toServerView(row);
  }

  async update(principal: Principal | undefined, slug: string, input: UpdateServer): Promise<ServerView> {
    const current = await this.require(slug);
    if (input.transport) await this.#checkTransport(input.transport, 'body.transport');
    const next = {
      transport: input.transport ?? current.transport,
      credentialFields: input.credentialFields ?? current.credentialFields,
    };
    const nextOAuth = input.oauth === undefined ? current.oauth : input.oauth;
    if (nextOAuth && next.transport.type === 'stdio') {
      const path = input.oauth ? 'body.oauth' : 'body.transport.type';
      const message = input.oauth
        ? 'is for remote servers only (not stdio)'
        : 'cannot be stdio while the server uses OAuth (set oauth to null first)';
      throw new AppError('validation_failed', `${path}: ${message}`, { issues: [{ path, message }] });
    }
    if (input.credentialFields || input.transport) {
      const check = createServerSchema.safeParse({ slug, name: current.name, ...next });
      if (!check.success) {
        const i = check.error.issues[0]!;
        const path = ['body', ...i.path.map(String)].join('.');
        throw new AppError('validation_failed', `${path}: ${i.message}`, {
          issues: [{ path, message: i.message }],
        });
      }
    }
    const row = await this.#repo.update(current.id, {
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.description !== undefined ? { description: input.description } : {}),
      ...(input.transport ? { transport: stripValues(input.transport) } : {}),
      ...(input.credentialFields ? { credentialFields: input.credentialFields } : {}),
      ...(input.enabled !== undefined ? { enabled: input.enabled } : {}),
      ...(input.threadIsolated !== undefined ? { threadIsolated: input.threadIsolated } : {}),
      ...(input.sensitiveTools ? { sensitiveTools: input.sensitiveTools } : {}),
      ...(input.oauth !== undefined ? { oauth: input.oauth ? storedOAuth(input.oauth) : null } : {}),
    });
    if (!row) throw notFound(`server ${slug}`);
    if (input.transport) await this.#credentials.putServerStatic(row.id, staticValues(input.transport));
    if (input.oauth !== undefined) {
      // A static client replaces the stored one; dropping it (or OAuth) forgets it. A dynamic
      // registration stays across other changes: users' grants are bound to that client.
      if (input.oauth?.clientId) {
        await this.#credentials.putServerOAuthClient(row.id, {
          clientId: input.oauth.clientId,
          clientSecret: input.oauth.clientSecret,
        });
      } else if (!input.oauth || current.oauth?.clientId) {
        await this.#credentials.putServerOAuthClient(row.id, undefined);
      }
    }
    this.#changed();
    this.#audit.record({
      category: 'admin',
      action: 'server.update',
      status: 'ok',
      userId: principal?.userId ?? null,
      apiKeyId: principal?.apiKeyId ?? null,
      serverSlug: slug,
      details: { changed: Object.keys(input) },
    });
    return toServerView(row);
  }

  async delete(principal: Principal | undefined, slug: string): Promise<void> {
    const current = await this.require(slug);
    await this.#credentials.deleteForServer(current.id);
    await this.#repo.delete(current.id);
    this.#changed();
    this.#audit.record({
      category: 'admin',
      action: 'server.delete',
      status: 'ok',
      userId: principal?.userId ?? null,
      apiKeyId: principal?.apiKeyId ?? null,
      serverSlug: slug,
    });
  }

  /** Connects, lists everything, stores the result with its time (or the error). */
  async discover(principal: Principal | undefined, slug: string): Promise<ServerView> {
    const server = await this.require(slug);
    if (!this.#discoverer) throw new Error('registry has no discoverer');
    let update: Partial<ServerRow>;
    try {
      const capabilities = await this.#discoverer(server, principal);
      update = { capabilities, capabilitiesAt: new Date(), capabilitiesError: null };
    } catch (err) {
      const message = (err as Error).message || 'discovery failed';
      this.#logger.warn({ server: slug, err: message }, 'capability discovery failed');
      update = { capabilitiesError: message.slice(0, 1000), capabilitiesAt: new Date() };
    }
    const row = await this.#repo.update(server.id, update);
    this.#changed();
    return toServerView(row!);
  }

  /** Stores capabilities learned elsewhere (health checks, a session's initialize). */
  async recordCapabilities(slug: string, capabilities: Capabilities): Promise<void> {
    const server = await this.get(slug);
    if (!server) return;
    await this.#repo.update(server.id, { capabilities, capabilitiesAt: new Date(), capabilitiesError: null });
    this.#changed();
  }
}
