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
