import { describe, expect, it } from 'vitest';
import type { Principal } from '../../core/principal.ts';
import type { AccessRepository } from './access.repository.ts';
import { AccessService } from './access.service.ts';

type Rows = Awaited<ReturnType<AccessRepository['listWithSlugs']>>;

const alice: Principal = { userId: 'u-alice', displayName: 'Alice', role: 'user', via: 'api_key' };
const tracker = { slug: 'tracker', enabled: true };
const grant = [
  {
    rule: { id: 'r1', subjectType: 'user', subject: 'u-alice', tools: null },
    slug: 'tracker',
  },
] as unknown as Rows;

describe('AccessService reloads', () => {
  it('never lets an older read bring back a rule a later reload no longer has', async () => {
    // The repository answers each read when the test says so, to order overlapping reloads.
    const answers: Array<(rows: Rows) => void> = [];
    const repo = {
      listWithSlugs: () => new Promise<Rows>((resolve) => answers.push(resolve)),
    } as unknown as AccessRepository;
    const access = new AccessService({ repo });

    const first = access.reload();
    answers[0]!(grant);
    await first;
    expect(access.canUseServer(alice, tracker)).toBe(true);

    const periodic = access.reload(); // the timer's reload reads the rule...
    const afterDelete = access.reload(); // ...the rule is deleted, and the delete's reload runs
    answers[2]!([] as unknown as Rows);
    await afterDelete;
    expect(access.canUseServer(alice, tracker)).toBe(false);
    answers[1]!(grant); // the older read finishes last
    await periodic;
    expect(access.canUseServer(alice, tracker)).toBe(false);
  });
});

describe('AccessService items', () => {
  const rows = (rule: Record<string, unknown>) =>
    [
      {
        rule: {
          id: 'r',
          subjectType: 'user',
          subject: 'u-alice',
          tools: null,
          prompts: null,
          resources: null,
          ...rule,
        },
        slug: 'tracker',
      },
    ] as unknown as Rows;
  const serviceWith = async (rule: Record<string, unknown>) => {
    const access = new AccessService({
      repo: { listWithSlugs: () => Promise.resolve(rows(rule)) } as unknown as AccessRepository,
    });
    await access.reload();
    return access;
  };

  it('a rule that names nothing grants the whole server', async () => {
    const access = await serviceWith({});
    expect(access.canUseItem(alice, tracker, 'tool', 'anything')).toBe(true);
    expect(access.canUseItem(alice, tracker, 'resource', 'file:///x')).toBe(true);
  });

  it('a rule that names tools grants only them: no prompts, no resources', async () => {
    const access = await serviceWith({ tools: ['search'] });
    expect(access.canUseItem(alice, tracker, 'tool', 'search')).toBe(true);
    expect(access.canUseItem(alice, tracker, 'tool', 'delete')).toBe(false);
    expect(access.canUseItem(alice, tracker, 'prompt', 'summary')).toBe(false);
    expect(access.canUseItem(alice, tracker, 'resource', 'tracker://issues/1')).toBe(false);
  });

  it('resource entries are exact URIs or prefixes ending in *, and templates follow their fixed part', async () => {
    const access = await serviceWith({ resources: ['tracker://issues/*', 'tracker://readme'] });
    expect(access.canUseItem(alice, tracker, 'resource', 'tracker://issues/42')).toBe(true);
    expect(access.canUseItem(alice, tracker, 'resource', 'tracker://readme')).toBe(true);
    expect(access.canUseItem(alice, tracker, 'resource', 'tracker://readme2')).toBe(false);
    expect(access.canUseItem(alice, tracker, 'resource', 'tracker://users/1')).toBe(false);
    expect(access.canUseItem(alice, tracker, 'template', 'tracker://issues/{id}')).toBe(true);
    // Its fixed part `tracker://{kind}` could expand outside the prefix.
    expect(access.canUseItem(alice, tracker, 'template', 'tracker://{kind}/1')).toBe(false);
    expect(access.canUseItem(alice, tracker, 'tool', 'search')).toBe(false);
  });
});
