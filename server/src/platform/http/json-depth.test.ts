import { describe, expect, it } from 'vitest';
import { jsonNestsDeeperThan } from './json-depth.ts';

const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
const check = (text: string, limit: number) => jsonNestsDeeperThan(Buffer.from(text), limit);

describe('jsonNestsDeeperThan', () => {
  it('counts arrays and objects together, up to and past the limit', () => {
    expect(check(deep(3), 3)).toBe(false);
    expect(check(deep(4), 3)).toBe(true);
    expect(check('{"a":[{"b":[1]}]}', 4)).toBe(false);
    expect(check('{"a":[{"b":[1]}]}', 3)).toBe(true);
    // Siblings do not add up: depth is the deepest branch.
    expect(check('[[1],[2],[3],{"x":1}]', 2)).toBe(false);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(check(JSON.stringify({ s: '[[[[[[{{{{' }), 1)).toBe(false);
    expect(check(JSON.stringify({ s: 'a "quoted [[[[ part" \\ and a backslash [[[' }), 1)).toBe(false);
    expect(check(JSON.stringify(['é[ü{', { k: ['ø'] }]), 2)).toBe(true);
    expect(check(JSON.stringify(['é[ü{', { k: ['ø'] }]), 3)).toBe(false);
  });
});
