import type { AccessRuleView, CreateAccessRule } from '@gateway/shared';
import { notFound } from '../../platform/http/errors.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditSink } from '../../core/audit.ts';
import type { Principal } from '../../core/principal.ts';
import type { AccessRepository } from './access.repository.ts';

/** The part of a server that access decisions look at. */
export interface AccessTarget {
  id?: string;
  slug: string;
  enabled: boolean;
}

/** The kinds of things of a server a rule can name. */
export type AccessItemKind = 'tool' | 'prompt' | 'resource' | 'template';

/** Resource URIs a rule grants: exact ones, and prefixes (entries that end in `*`). */
interface CompiledResources {
  exact: Set<string>;
  prefixes: string[];
}

interface CompiledRule {
  id: string;
  subjectType: 'user' | 'group' | 'everyone';
  subject: string;
  slug: string;
  /** Null: the whole server. Otherwise only what is listed; an empty kind grants none of it. */
  items: { tools: Set<string>; prompts: Set<string>; resources: CompiledResources } | null;
  /** The lists as stored, for the REST view. */
  lists: { tools: string[] | null; prompts: string[] | null; resources: string[] | null };
}

function compileResources(entries: readonly string[] | null): CompiledResources {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const e of entries ?? []) {
    if (e.endsWith('*')) prefixes.push(e.slice(0, -1));
    else exact.add(e);
  }
  return { exact, prefixes };
}

/** Whether a rule's item lists grant `name` of `kind` (a tool or prompt name, a URI, a URI template). */
function grants(items: NonNullable<CompiledRule['items']>, kind: AccessItemKind, name: string): boolean {
  switch (kind) {
    case 'tool':
      return items.tools.has(name);
    case 'prompt':
      return items.prompts.has(name);
    case 'resource':
      return items.resources.exact.has(name) || items.resources.prefixes.some((p) => name.startsWith(p));
    case 'template': {
      if (items.resources.exact.has(name)) return true;
      // The template's fixed part: every URI it expands to starts with it.
      const brace = name.indexOf('{');
      const fixed = brace < 0 ? name : name.slice(0, brace);
      return items.resources.prefixes.some((p) => fixed.startsWith(p));
    }
  }
}

/**
 * Who may use which server and tool. Rules grant a user, a group or everyone a server, or
 * only listed tools of it; no rule, no access. Admins may use every enabled server.
 * Decisions come from an in-memory copy of the rules: changes through this service apply
 * at once in this process, and every replica reloads the rules every `refreshMs` (so a
 * change made on another replica applies within that time).
 */
export class AccessService {
  readonly #repo: AccessRepository | undefined;
  readonly #audit: AuditSink | undefined;
  readonly #logger: Logger | undefined;
  readonly #onChange: (() => void) | undefined;
  #rules: CompiledRule[] = [];
  /** The rules by server slug: every request of every session asks, so a lookup is per server. */
  #bySlug = new Map<string, CompiledRule[]>();
  // Reloads can overlap (the timer's and a change's): each is numbered when it starts, and
  // one that finishes after a later one has applied its rows is dropped, so a rule that was
  // just deleted is never brought back by an older read.
  #reloadsStarted = 0;
  #reloadApplied = 0;
  #timer: NodeJS.Timeout | undefined;
  #fingerprint = '';
  readonly #listeners: Array<() => void> = [];

  constructor(
    deps: {
      repo?: AccessRepository;
      audit?: AuditSink;
      logger?: Logger;
      refreshMs?: number;
      /** Called after every change made through this service (to tell other processes). */
      onChange?: () => void;
    } = {},
  ) {
    this.#repo = deps.repo;
    this.#onChange = deps.onChange;
    this.#audit = deps.audit;
    this.#logger = deps.logger;
    if (deps.repo && deps.refreshMs) {
      this.#timer = setInterval(() => {
        this.reload().catch((err: unknown) => this.#logger?.warn({ err }, 'could not reload access rules'));
      }, deps.refreshMs);
      this.#timer.unref();
    }
  }

  async reload(): Promise<void> {
    if (!this.#repo) return;
    const seq = ++this.#reloadsStarted;
    const rows = await this.#repo.listWithSlugs();
    if (seq < this.#reloadApplied) return;
    this.#reloadApplied = seq;
    // The periodic reload mostly finds nothing new: sessions are re-checked only on a change.
    const fingerprint = JSON.stringify(rows);
    if (fingerprint === this.#fingerprint) return;
    this.#fingerprint = fingerprint;
    this.#rules = rows.map(({ rule, slug }) => ({
      id: rule.id,
      subjectType: rule.subjectType,
      subject: rule.subject,
      slug,
      items:
        rule.tools || rule.prompts || rule.resources
          ? {
              tools: new Set(rule.tools ?? []),
              prompts: new Set(rule.prompts ?? []),
              resources: compileResources(rule.resources),
            }
          : null,
      lists: { tools: rule.tools ?? null, prompts: rule.prompts ?? null, resources: rule.resources ?? null },
    }));
    const bySlug = new Map<string, CompiledRule[]>();
    for (const r of this.#rules) bySlug.set(r.slug, [...(bySlug.get(r.slug) ?? []), r]);
    this.#bySlug = bySlug;
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch (err) {
        this.#logger?.warn({ err }, 'an access change listener failed');
      }
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #matching(principal: Principal, slug: string): CompiledRule[] {
    const groups = principal.groups ?? [];
    return (this.#bySlug.get(slug) ?? []).filter(
      (r) =>
        r.subjectType === 'everyone' ||
        (r.subjectType === 'user' && r.subject === principal.userId) ||
        (r.subjectType === 'group' && groups.includes(r.subject)),
    );
  }

  #inScope(principal: Principal, slug: string) {
    return !principal.serverScope || principal.serverScope.includes(slug);
  }

  /** May the caller use this server through the gateway? */
  canUseServer(principal: Principal, server: AccessTarget): boolean {
    if (!server.enabled || !this.#inScope(principal, server.slug)) return false;
    if (principal.role === 'admin') return true;
    return this.#matching(principal, server.slug).length > 0;
  }

  /** May the caller call this tool of the server? */
  canCallTool(principal: Principal, server: AccessTarget, tool: string): boolean {
    return this.canUseItem(principal, server, 'tool', tool);
  }

  /**
   * May the caller use this item of the server: call a tool, get a prompt, read or subscribe
   * to a resource URI, see a resource template? Rules that name no items grant them all.
   */
  canUseItem(principal: Principal, server: AccessTarget, kind: AccessItemKind, name: string): boolean {
    if (!server.enabled || !this.#inScope(principal, server.slug)) return false;
    if (principal.role === 'admin') return true;
    return this.#matching(principal, server.slug).some(
      (r) => r.items === null || grants(r.items, kind, name),
    );
  }

  /**
   * What the caller may use of the server, as a string that changes exactly when that does:
   * '' nothing, '*' everything, otherwise the items the matching rules name. Open sessions
   * compare it after a change to tell their client that its lists changed.
   */
  grantOf(principal: Principal, server: AccessTarget): string {
    if (!this.canUseServer(principal, server)) return '';
    if (principal.role === 'admin') return '*';
    const rules = this.#matching(principal, server.slug);
    if (rules.some((r) => r.items === null)) return '*';
    const union = (kind: 'tools' | 'prompts' | 'resources') =>
      [...new Set(rules.flatMap((r) => r.lists[kind] ?? []))].sort();
    return JSON.stringify([union('tools'), union('prompts'), union('resources')]);
  }

  /** Calls `listener` after every change of the rules in memory (here or reloaded from another process). */
  onRulesChanged(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** May the caller see this server's catalog entry over REST? Admins see every server. */
  canViewServer(principal: Principal, server: AccessTarget): boolean {
    if (principal.role === 'admin') return this.#inScope(principal, server.slug);
    return this.canUseServer(principal, server);
  }

  list(): AccessRuleView[] {
    return this.#rules.map((r) => ({
      id: r.id,
      subjectType: r.subjectType,
      subject: r.subject,
      server: r.slug,
      ...r.lists,
    }));
  }

  async create(principal: Principal, input: CreateAccessRule, serverId: string): Promise<AccessRuleView> {
    if (!this.#repo) throw new Error('access rules are not persisted in this process');
    const row = await this.#repo.insert({
      subjectType: input.subjectType,
      subject: input.subjectType === 'everyone' ? '' : input.subject!,
      serverId,
      tools: input.tools ?? null,
      prompts: input.prompts ?? null,
      resources: input.resources ?? null,
      createdBy: principal.userId,
    });
    await this.reload();
    this.#onChange?.();
    this.#audit?.record({
      category: 'admin',
      action: 'access_rule.create',
      status: 'ok',
      userId: principal.userId,
      apiKeyId: principal.apiKeyId ?? null,
      serverSlug: input.server,
      details: {
        ruleId: row.id,
        subjectType: input.subjectType,
        subject: row.subject,
        tools: input.tools ?? null,
        prompts: input.prompts ?? null,
        resources: input.resources ?? null,
      },
    });
    return this.list().find((r) => r.id === row.id)!;
  }

  async delete(principal: Principal, id: string): Promise<void> {
    if (!this.#repo) throw new Error('access rules are not persisted in this process');
    const existing = this.#rules.find((r) => r.id === id);
    if (!(await this.#repo.delete(id))) throw notFound('access rule');
    await this.reload();
    this.#onChange?.();
    this.#audit?.record({
      category: 'admin',
      action: 'access_rule.delete',
      status: 'ok',
      userId: principal.userId,
      apiKeyId: principal.apiKeyId ?? null,
      serverSlug: existing?.slug ?? null,
      details: { ruleId: id },
    });
  }
}
