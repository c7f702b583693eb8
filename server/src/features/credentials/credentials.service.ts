import type { CredentialField, CredentialView, PutCredentials } from '@gateway/shared';
import type { Vault } from '../../platform/crypto/vault.ts';
import { badRequest, notFound } from '../../platform/http/errors.ts';
import type { AuditSink } from '../../core/audit.ts';
import type { CredentialOwner, CredentialRow, CredentialsRepository } from './credentials.repository.ts';

/** The part of a registered server the credentials feature needs. */
export interface CredentialTarget {
  id: string;
  slug: string;
  credentialFields: CredentialField[];
  threadIsolated: boolean;
}

/** Values resolved for one upstream connection, and which scope they came from. */
export interface ResolvedCredentials {
  values: Record<string, string>;
  scope: 'thread' | 'user' | 'none';
}

/**
 * Binds a sealed record to its owner (the vault's additional authenticated data); rotation
 * re-uses it. OAuth records name their kind too, so values and tokens never swap; value
 * records keep the original form, so records sealed before kinds existed still open.
 */
export const aad = (o: CredentialOwner) =>
  `${o.scope}|${o.serverId}|${o.userId ?? ''}|${o.threadId}${o.kind === 'oauth' ? '|oauth' : ''}`;

/** A stored record as the API shows it (never its sealed content). */
export function toCredentialView(row: CredentialRow, serverSlug: string): CredentialView {
  return {
    serverSlug,
    threadId: row.threadId || null,
    kind: row.kind,
    fields: row.kind === 'values' ? row.fieldNames.split(',').filter(Boolean) : [],
    status: row.status,
    expiresAt: row.kind === 'oauth' ? (row.expiresAt?.toISOString() ?? null) : null,
    updatedAt: row.updatedAt.toISOString(),
  };
}

/**
 * Secrets for upstream servers, sealed by the vault. A user's values for a server (optionally
 * for one chat thread), and an admin's static values for a server. Values never leave this
 * service except to open an upstream connection; views show field names only.
 */
export class CredentialsService {
  readonly #repo: CredentialsRepository;
  readonly #vault: Vault;
  readonly #audit: AuditSink;

  constructor(repo: CredentialsRepository, vault: Vault, audit: AuditSink) {
    this.#repo = repo;
    this.#vault = vault;
    this.#audit = audit;
  }

  async #store(owner: CredentialOwner, values: Record<string, string>) {
    const sealed = this.#vault.seal(JSON.stringify(values), aad(owner));
    return this.#repo.upsert(owner, { ...sealed, fieldNames: Object.keys(values).sort().join(',') });
  }

  async #open(owner: CredentialOwner): Promise<Record<string, string> | undefined> {
    const row = await this.#repo.find(owner);
    if (!row) return undefined;
    return JSON.parse(this.#vault.open(row, aad(owner))) as Record<string, string>;
  }

  /** Stores a user's values for a server, checked against the server's declared fields. */
  async putUserValues(
    userId: string,
    server: CredentialTarget,
    input: PutCredentials,
  ): Promise<CredentialView> {
    const declared = new Map(server.credentialFields.map((f) => [f.name, f]));
    for (const name of Object.keys(input.values)) {
      if (!declared.has(name)) {
        throw badRequest(`body.values.${name}: is not a credential field of server ${server.slug}`, [
          { path: `body.values.${name}`, message: `is not a credential field of server ${server.slug}` },
        ]);
      }
    }
    for (const f of server.credentialFields) {
      if (f.required && !input.values[f.name]) {
        throw badRequest(`body.values.${f.name}: is required`, [
          { path: `body.values.${f.name}`, message: 'is required' },
        ]);
      }
    }
    const owner: CredentialOwner = {
      scope: 'user',
      kind: 'values',
      serverId: server.id,
      userId,
      threadId: input.threadId ?? '',
    };
    const row = await this.#store(owner, input.values);
    this.#audit.record({
      category: 'credential',
      action: 'credential.put',
      status: 'ok',
      userId,
      serverSlug: server.slug,
      threadId: input.threadId ?? null,
      details: { fields: Object.keys(input.values) },
    });
    return toCredentialView(row, server.slug);
  }

  async deleteUserValues(userId: string, server: CredentialTarget, threadId?: string): Promise<void> {
    const ok = await this.#repo.delete({
      scope: 'user',
      kind: 'values',
      serverId: server.id,
      userId,
      threadId: threadId ?? '',
    });
    if (!ok) throw notFound('credential');
    this.#audit.record({
      category: 'credential',
      action: 'credential.delete',
      status: 'ok',
      userId,
      serverSlug: server.slug,
      threadId: threadId ?? null,
    });
  }

  /** The caller's own credentials (values and OAuth connections), names and status only. */
  async listForUser(userId: string): Promise<CredentialView[]> {
    const rows = await this.#repo.listForUser(userId);
    return rows.map(({ credential, slug }) => toCredentialView(credential, slug));
  }

  /**
   * The values to inject for one connection: the thread's credential first, then the
   * user's, except on thread-isolated servers where only the thread's counts. Every use is
   * an audit event (which scope, never the values).
   */
  async resolveForUse(
    server: CredentialTarget,
    context: { userId: string; threadId?: string | undefined; sessionId?: string | undefined },
  ): Promise<ResolvedCredentials> {
    let resolved: ResolvedCredentials = { values: {}, scope: 'none' };
    if (server.credentialFields.length) {
      const thread = context.threadId
        ? await this.#open({
            scope: 'user',
            kind: 'values',
            serverId: server.id,
            userId: context.userId,
            threadId: context.threadId,
          })
        : undefined;
      if (thread) resolved = { values: thread, scope: 'thread' };
      else if (!(context.threadId && server.threadIsolated)) {
        const user = await this.#open({
          scope: 'user',
          kind: 'values',
          serverId: server.id,
          userId: context.userId,
          threadId: '',
        });
        if (user) resolved = { values: user, scope: 'user' };
      }
      this.#audit.record({
        category: 'credential',
        action: 'credential.use',
        status: resolved.scope === 'none' ? 'error' : 'ok',
        userId: context.userId,
        serverSlug: server.slug,
        threadId: context.threadId ?? null,
        sessionId: context.sessionId ?? null,
        credentialScope: resolved.scope,
        ...(resolved.scope === 'none' ? { error: 'no credential stored for this server' } : {}),
      });
    }
    return resolved;
  }

  /** Replaces a server's static (admin-supplied) secret values. */
  async putServerStatic(serverId: string, values: Record<string, string>): Promise<void> {
    const owner: CredentialOwner = { scope: 'server', kind: 'values', serverId, userId: null, threadId: '' };
    if (Object.keys(values).length) await this.#store(owner, values);
    else await this.#repo.delete(owner);
  }

  async getServerStatic(serverId: string): Promise<Record<string, string>> {
    return (
      (await this.#open({ scope: 'server', kind: 'values', serverId, userId: null, threadId: '' })) ?? {}
    );
  }

  /**
   * Sets the gateway's OAuth client at a server's authorization server: an admin's static
   * client (id and sealed secret) replaces whatever was stored; `undefined` drops it (the
   * gateway then registers itself dynamically at first use).
   */
  async putServerOAuthClient(
    serverId: string,
    client: { clientId: string; clientSecret?: string | undefined } | undefined,
  ): Promise<void> {
    const owner: CredentialOwner = { scope: 'server', kind: 'oauth', serverId, userId: null, threadId: '' };
    if (!client) {
      await this.#repo.delete(owner);
      return;
    }
    const info = {
      client_id: client.clientId,
      ...(client.clientSecret ? { client_secret: client.clientSecret } : {}),
    };
    const sealed = this.#vault.seal(JSON.stringify(info), aad(owner));
    await this.#repo.upsert(owner, { ...sealed, fieldNames: '' });
  }

  async deleteForServer(serverId: string): Promise<void> {
    await this.#repo.deleteForServer(serverId);
  }

  /** Deletes a chat thread's own credentials (when the thread is deleted). */
  async deleteForThread(userId: string, threadId: string): Promise<void> {
    const removed = await this.#repo.deleteForThread(userId, threadId);
    if (removed === 0) return;
    this.#audit.record({
      category: 'credential',
      action: 'credential.delete',
      status: 'ok',
      userId,
      threadId,
      details: { reason: 'thread deleted', count: removed },
    });
  }
}
