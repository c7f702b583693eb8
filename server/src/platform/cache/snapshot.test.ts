import { describe, expect, it, vi } from 'vitest';
import { Snapshot } from './snapshot.ts';

/** A load whose results the test hands out one at a time, in the order the loads started. */
function scriptedLoad() {
  const pending: Array<(value: string) => void> = [];
  const failures: Array<(err: Error) => void> = [];
  const load = vi.fn(
    () =>
      new Promise<string>((resolve, reject) => {
        pending.push(resolve);
        failures.push(reject);
      }),
  );
  return {
    load,
    resolve: (i: number, value: string) => pending[i]!(value),
    reject: (i: number, err: Error) => failures[i]!(err),
  };
}

describe('Snapshot', () => {
  it('shares one load between concurrent readers and keeps the value for the TTL', async () => {
    const s = scriptedLoad();
    const snap = new Snapshot(s.load, { ttlMs: 60_000 });
    const a = snap.get();
    const b = snap.get();
    s.resolve(0, 'v1');
    expect(await a).toBe('v1');
    expect(await b).toBe('v1');
    expect(await snap.get()).toBe('v1');
    expect(s.load).toHaveBeenCalledTimes(1);
  });

  it('never stores what a load that was running at invalidate() read', async () => {
    const s = scriptedLoad();
    const snap = new Snapshot(s.load, { ttlMs: 60_000 });
    const before = snap.get(); // load 0 reads the old rows...
    snap.invalidate(); // ...a change lands...
    const after = snap.get(); // ...and a read after it starts load 1.
    s.resolve(1, 'new');
    s.resolve(0, 'old');
    expect(await before).toBe('old');
    expect(await after).toBe('new');
    expect(await snap.get()).toBe('new');
    expect(s.load).toHaveBeenCalledTimes(2);
  });

  it('does not keep the old value when the old load finishes last and nobody read since', async () => {
    const s = scriptedLoad();
    const snap = new Snapshot(s.load, { ttlMs: 60_000 });
    const before = snap.get();
    snap.invalidate();
    s.resolve(0, 'old');
    await before;
    const next = snap.get();
    s.resolve(1, 'new');
    expect(await next).toBe('new');
  });

  it('with stale-while-revalidate, answers from the old value past the TTL and reports a failed reload once', async () => {
    vi.useFakeTimers();
    try {
      const s = scriptedLoad();
      const errors: unknown[] = [];
      const snap = new Snapshot(s.load, { ttlMs: 1_000, onBackgroundError: (e) => errors.push(e) });
      const first = snap.get();
      s.resolve(0, 'v1');
      expect(await first).toBe('v1');
      vi.advanceTimersByTime(1_001);
      expect(await snap.get()).toBe('v1');
      expect(await snap.get()).toBe('v1');
      expect(s.load).toHaveBeenCalledTimes(2);
      s.reject(1, new Error('database gone'));
      await vi.waitFor(() => expect(errors).toHaveLength(1));
      const retry = snap.get();
      expect(await retry).toBe('v1');
      s.resolve(2, 'v2');
      await vi.waitFor(async () => expect(await snap.get()).toBe('v2'));
    } finally {
      vi.useRealTimers();
    }
  });

  it('without it, a failed first load rejects the readers and the next read tries again', async () => {
    const s = scriptedLoad();
    const snap = new Snapshot(s.load, { ttlMs: 60_000 });
    const a = snap.get();
    s.reject(0, new Error('down'));
    await expect(a).rejects.toThrow('down');
    const b = snap.get();
    s.resolve(1, 'up');
    expect(await b).toBe('up');
  });
});
