// Usage statistics from the audit trail: tools/call counts, errors and latency percentiles
// per server and tool, each user seeing their own and admins and auditors everyone's.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AuditRepository,
  buildAuditRecord,
  type AuditEventInput,
} from '../../server/src/features/audit/index.ts';
import { engines } from '../support/database.ts';
import { createUserKey, useServer } from '../support/server.ts';

const MIN = 60_000;

describe.each(await engines())('GET /api/stats/usage on %s', (engine) => {
  const ctx = useServer(engine);
  let alice: Awaited<ReturnType<typeof createUserKey>>;
  let bob: Awaited<ReturnType<typeof createUserKey>>;

  beforeAll(async () => {
    alice = await createUserKey(ctx.server, 'alice');
    bob = await createUserKey(ctx.server, 'bob');
    const now = Date.now();
    const call = (
      userId: string,
      server: string,
      tool: string,
      latencyMs: number,
      agoMs: number,
      extra: Partial<AuditEventInput> = {},
    ) =>
      buildAuditRecord(
        {
          category: 'mcp',
          action: 'tools/call',
          status: 'ok',
          userId,
          serverSlug: server,
          toolName: tool,
          latencyMs,
          ...extra,
        },
        new Date(now - agoMs),
      );
    const records = [
      // alice, s1/echo: latencies 1..100 ms ten minutes ago, every tenth one failed.
      ...Array.from({ length: 100 }, (_, i) =>
        call(alice.user.id, 's1', 'echo', i + 1, 10 * MIN, i % 10 === 9 ? { status: 'error' } : {}),
      ),
      // Refused by policy: counted, kept out of the latencies.
      ...Array.from({ length: 5 }, () =>
        call(alice.user.id, 's1', 'echo', 0, 10 * MIN, { status: 'denied' }),
      ),
      // alice, s1/sum: two hours ago (outside 1h, inside 24h).
      ...[10, 20, 30, 40].map((ms) => call(alice.user.id, 's1', 'sum', ms, 120 * MIN)),
      // alice, two days ago (only in 7d).
      call(alice.user.id, 's1', 'echo', 5_000, 2 * 24 * 60 * MIN),
      // bob, s2/echo.
      ...[5, 5, 5].map((ms) => call(bob.user.id, 's2', 'echo', ms, 5 * MIN)),
      // Not tool calls: ignored.
      buildAuditRecord({
        category: 'mcp',
        action: 'tools/list',
        status: 'ok',
        userId: alice.user.id,
        serverSlug: 's1',
        latencyMs: 9,
      }),
      buildAuditRecord({
        category: 'admin',
        action: 'tools/call',
        status: 'ok',
        userId: alice.user.id,
        serverSlug: 's1',
        latencyMs: 9,
      }),
    ];
    await new AuditRepository(ctx.server.core.database.db).appendChained(records, { dedupe: false });
  });

  it('a user sees their own calls, errors and percentiles per server and tool', async () => {
    const res = await alice.client.get('/api/stats/usage?window=24h');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ window: '24h', userId: alice.user.id });
    expect(Date.parse(res.body.to) - Date.parse(res.body.from)).toBe(24 * 60 * MIN);
    const [echo, sum, ...rest] = res.body.rows;
    expect(rest).toEqual([]);
    expect(echo).toMatchObject({ server: 's1', tool: 'echo', calls: 105, errors: 10, denied: 5 });
    // percentile_cont over 1..100: linear interpolation between neighbours.
    expect(echo.p50Ms).toBeCloseTo(50.5, 6);
    expect(echo.p95Ms).toBeCloseTo(95.05, 6);
    expect(echo.p99Ms).toBeCloseTo(99.01, 6);
    expect(sum).toMatchObject({ server: 's1', tool: 'sum', calls: 4, errors: 0, denied: 0 });
    expect(sum.p50Ms).toBeCloseTo(25, 6);
    expect(sum.p95Ms).toBeCloseTo(38.5, 6);
    expect(sum.p99Ms).toBeCloseTo(39.7, 6);
  });

  it('the window bounds the events counted', async () => {
    const hour = await alice.client.get('/api/stats/usage?window=1h');
    expect(hour.body.rows.map((r: { tool: string; calls: number }) => [r.tool, r.calls])).toEqual([
      ['echo', 105],
    ]);
    const week = await alice.client.get('/api/stats/usage?window=7d');
    expect(week.body.rows.map((r: { tool: string; calls: number }) => [r.tool, r.calls])).toEqual([
      ['echo', 106],
      ['sum', 4],
    ]);
    // The default window is 24h.
    expect((await alice.client.get('/api/stats/usage')).body.window).toBe('24h');
  });

  it('admins see everyone, and can narrow by server or user', async () => {
    const all = await ctx.admin.get('/api/stats/usage?window=24h');
    expect(all.body.userId).toBeNull();
    expect(
      all.body.rows.map((r: { server: string; tool: string; calls: number }) => [r.server, r.tool, r.calls]),
    ).toEqual([
      ['s1', 'echo', 105],
      ['s1', 'sum', 4],
      ['s2', 'echo', 3],
    ]);
    const s2 = await ctx.admin.get('/api/stats/usage?window=24h&server=s2');
    expect(s2.body.rows).toEqual([
      { server: 's2', tool: 'echo', calls: 3, errors: 0, denied: 0, p50Ms: 5, p95Ms: 5, p99Ms: 5 },
    ]);
    const ofBob = await ctx.admin.get(`/api/stats/usage?userId=${bob.user.id}`);
    expect(ofBob.body.rows.map((r: { server: string }) => r.server)).toEqual(['s2']);
  });

  it("refuses another user's usage to a user, and bad windows", async () => {
    const res = await alice.client.get(`/api/stats/usage?userId=${bob.user.id}`);
    expect(res.status).toBe(403);
    expect((await bob.client.get('/api/stats/usage')).body.rows).toHaveLength(1);
    const bad = await alice.client.get('/api/stats/usage?window=30d');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('query.window');
    expect((await alice.client.get('/api/stats/usage?window=1h&extra=1')).status).toBe(400);
  });
});
