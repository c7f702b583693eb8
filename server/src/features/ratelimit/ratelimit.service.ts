import type { Redis } from 'ioredis';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  RLWrapperTimeouts,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { Config } from '../../platform/config/config.ts';
import type { Logger } from '../../platform/logging/logger.ts';
import type { AuditSink } from '../../core/audit.ts';
import type { Principal } from '../../core/principal.ts';

/**
 * Which limit refused a request: `ip` (per client address, before authentication), `user`,
 * `user_server` (per user and MCP server) and `tool` (per user and configured tool).
 */
export type RateLimitScope = 'ip' | 'user' | 'user_server' | 'tool';

/** A refused request: which limit, and when the caller may try again. */
export interface RateLimitRejection {
  readonly scope: RateLimitScope;
  readonly limitPerMinute: number;
  readonly retryAfterSeconds: number;
  /** Safe to show the caller: names the limit, never another user's data. */
  readonly message: string;
}

/** The request being counted, for the keys and for the audit record of a refusal. */
export interface RateLimitSubject {
  readonly ip: string | undefined;
  readonly principal?: Principal | undefined;
  readonly method: string;
  readonly path: string;
}

/** A `tools/call` in an MCP request: the server it goes to and the tool's own name. */
export interface ToolCallTarget {
  readonly slug: string;
  readonly tool: string;
}

export interface RateLimitDeps {
  readonly settings: Config['rateLimit'];
  /** Counters live in Redis when given (shared by every replica), in memory otherwise. */
  readonly redis?: { readonly client: Redis; readonly prefix: string } | undefined;
  readonly audit: AuditSink;
  readonly metrics?: { recordRateLimitRejection(scope: string): void } | undefined;
  readonly logger: Logger;
}

const WINDOW_SECONDS = 60;
/** A Redis answer slower than this falls back to the in-memory counter for that request. */
const REDIS_TIMEOUT_MS = 500;
/**
 * Refusals audited (and logged) per key and window. A client hammering past its limit is
 * refused on every request, and a row for each would let it flood the audit trail and the
 * logs; the metric still counts every refusal.
 */
const AUDITED_PER_WINDOW = 10;
const MAX_KEY_PART = 256;

/**
 * Fixed one-minute windows per scope (rate-limiter-flexible). With Redis the counters are
 * shared by every replica (keys under `{REDIS_PREFIX}:ratelimit:`); if Redis is unreachable
 * or slow each replica counts in memory until it answers again, so an outage neither blocks
 * nor unlimits traffic. Every refusal is counted in metrics and audited (category `auth`,
 * action `rate_limit`, status `denied`).
 */
export class RateLimitService {
  readonly #deps: RateLimitDeps;
  readonly #logger: Logger;
  readonly #limiters = new Map<string, RateLimiterAbstract>();

  constructor(deps: RateLimitDeps) {
    this.#deps = deps;
    this.#logger = deps.logger.child({ feature: 'ratelimit' });
  }

  /** Per client address, before authentication. */
  checkIp(subject: RateLimitSubject): Promise<RateLimitRejection | undefined> {
    const limit = this.#deps.settings.ipPerMinute;
    return this.#consume('ip', limit, subject.ip ?? 'unknown', 1, subject, {
      message: `at most ${limit} requests per minute from one address`,
    });
  }

  /** Per authenticated user (REST API). */
  checkUser(subject: RateLimitSubject & { principal: Principal }): Promise<RateLimitRejection | undefined> {
    const limit = this.#deps.settings.userPerMinute;
    return this.#consume('user', limit, subject.principal.userId, 1, subject, {
      message: `at most ${limit} requests per minute per user`,
    });
  }

  /**
   * Everything an MCP request counts against, in order: the user, the user on each server
   * it addresses (`slug` for `/mcp/{slug}`; the servers of its `tools/call`s on `/mcp`),
   * and each configured tool it calls. The first limit exceeded refuses the whole request.
   */
  async checkMcp(
    subject: RateLimitSubject & { principal: Principal },
    target: { slug: string | undefined; toolCalls: readonly ToolCallTarget[] },
  ): Promise<RateLimitRejection | undefined> {
    const userId = subject.principal.userId;
    const user = await this.checkUser(subject);
    if (user) return user;
    const perServer = new Map<string, number>();
    if (target.slug) perServer.set(target.slug, 1);
    else for (const c of target.toolCalls) perServer.set(c.slug, (perServer.get(c.slug) ?? 0) + 1);
    const serverLimit = this.#deps.settings.userServerPerMinute;
    for (const [slug, count] of perServer) {
      const refused = await this.#consume('user_server', serverLimit, `${userId}:${slug}`, count, subject, {
        message: `at most ${serverLimit} requests per minute per user to server ${slug}`,
        serverSlug: slug,
      });
      if (refused) return refused;
    }
    const perTool = new Map<string, { call: ToolCallTarget; count: number; limit: number }>();
    for (const call of target.toolCalls) {
      const limit = this.toolLimit(call.slug, call.tool);
      if (limit === undefined) continue;
      const name = `${call.slug}__${call.tool}`.slice(0, MAX_KEY_PART);
      const entry = perTool.get(name) ?? { call, count: 0, limit };
      entry.count++;
      perTool.set(name, entry);
    }
    for (const [name, { call, count, limit }] of perTool) {
      const refused = await this.#consume('tool', limit, `${userId}:${name}`, count, subject, {
        message: `at most ${limit} calls per minute per user of tool ${call.tool} of server ${call.slug}`,
        serverSlug: call.slug,
        toolName: call.tool,
      });
      if (refused) return refused;
    }
    return undefined;
  }

  /** The per-minute limit of a tool from RATE_LIMIT_TOOLS (exact entry, then `{server}__*`), if any. */
  toolLimit(slug: string, tool: string): number | undefined {
    const tools = this.#deps.settings.tools;
    return tools[`${slug}__${tool}`] ?? tools[`${slug}__*`];
  }

  async #consume(
    scope: RateLimitScope,
    limit: number,
    key: string,
    points: number,
    subject: RateLimitSubject,
    about: { message: string; serverSlug?: string; toolName?: string },
  ): Promise<RateLimitRejection | undefined> {
    if (limit <= 0) return undefined;
    try {
      await this.#limiter(scope, limit).consume(key, points);
      return undefined;
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) {
        // Both stores failed (cannot normally happen: memory is the fallback); let it through.
        this.#logger.warn({ err, scope }, 'rate limiter failed; request allowed');
        return undefined;
      }
      const retryAfterSeconds = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      const rejection: RateLimitRejection = {
        scope,
        limitPerMinute: limit,
        retryAfterSeconds,
        message: `rate limit exceeded (${scope}): ${about.message}; retry in ${retryAfterSeconds} s`,
      };
      this.#deps.metrics?.recordRateLimitRejection(scope);
      if (err.consumedPoints - points < limit + AUDITED_PER_WINDOW) {
        const principal = subject.principal;
        this.#deps.audit.record({
          category: 'auth',
          action: 'rate_limit',
          status: 'denied',
          userId: principal?.userId ?? null,
          apiKeyId: principal?.apiKeyId ?? null,
          oauthClientId: principal?.oauthClientId ?? null,
          serverSlug: about.serverSlug ?? null,
          toolName: about.toolName ?? null,
          ip: subject.ip ?? null,
          error: rejection.message,
          details: { scope, limitPerMinute: limit, method: subject.method, path: subject.path },
        });
        this.#logger.info(
          {
            scope,
            userId: principal?.userId,
            ip: subject.ip,
            server: about.serverSlug,
            tool: about.toolName,
            method: subject.method,
            path: subject.path,
          },
          'rate limit exceeded',
        );
      }
      return rejection;
    }
  }

  /** One limiter per scope and limit (tool limits differ per tool); keys carry who and what. */
  #limiter(scope: RateLimitScope, points: number): RateLimiterAbstract {
    const name = `${scope}:${points}`;
    let limiter = this.#limiters.get(name);
    if (limiter) return limiter;
    const memory = new RateLimiterMemory({ points, duration: WINDOW_SECONDS, keyPrefix: scope });
    const redis = this.#deps.redis;
    limiter = redis
      ? new RLWrapperTimeouts({
          limiter: new RateLimiterRedis({
            storeClient: redis.client,
            points,
            duration: WINDOW_SECONDS,
            keyPrefix: `${redis.prefix}:ratelimit:${scope}`,
            // Not connected: count in memory right away instead of queueing behind reconnects.
            rejectIfRedisNotReady: true,
            insuranceLimiter: memory,
          }),
          timeoutMs: REDIS_TIMEOUT_MS,
          insuranceLimiter: memory,
        })
      : memory;
    this.#limiters.set(name, limiter);
    return limiter;
  }
}
