import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../platform/config/config.ts';
import { createLogger } from '../../platform/logging/logger.ts';
import type { AuditEventInput } from '../audit/index.ts';
import type { Principal } from '../../core/principal.ts';
import { RateLimitService } from './ratelimit.service.ts';

const principal: Principal = {
  userId: 'agent-user',
  displayName: 'agent',
  role: 'user',
  groups: [],
  via: 'api_key',
};

function service() {
  const audited: AuditEventInput[] = [];
  const limits = new RateLimitService({
    settings: loadConfig({}).rateLimit,
    audit: { record: (e) => void audited.push(e) },
    logger: createLogger({ level: 'silent', name: 'test' }),
  });
  return { limits, audited };
}

/** One MCP tools/call as the gateway counts it: the address first, then user, server, tool. */
async function toolCall(limits: RateLimitService) {
  const subject = { ip: '203.0.113.7', principal, method: 'POST', path: '/mcp/search' };
  return (
    (await limits.checkIp(subject)) ??
    (await limits.checkMcp(subject, { slug: 'search', toolCalls: [{ slug: 'search', tool: 'query' }] }))
  );
}

describe('default rate limits', () => {
  it('let an agent make 1,500 quick tool calls in a minute (150 a second for ten seconds)', async () => {
    const { limits, audited } = service();
    for (let i = 0; i < 1_500; i++) {
      const refused = await toolCall(limits);
      expect(refused, `call ${i + 1}`).toBeUndefined();
    }
    expect(audited).toEqual([]);
  });

  it('still stop one user flooding one server', async () => {
    const { limits, audited } = service();
    const perServer = loadConfig({}).rateLimit.userServerPerMinute;
    for (let i = 0; i < perServer; i++) expect(await toolCall(limits)).toBeUndefined();
    expect(await toolCall(limits)).toMatchObject({ scope: 'user_server', limitPerMinute: perServer });
    expect(audited).toMatchObject([{ action: 'rate_limit', userId: 'agent-user', serverSlug: 'search' }]);
  });
});
