// Keeps the boundaries of docs/ARCHITECTURE.md: a failing test here means a module reached
// somewhere it must not.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCycles, importGraph, importSpecifiers } from './support/import-cycles.ts';
import { ROOT } from './support/process.ts';

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'dist') out.push(...sourceFiles(rel));
    } else if (/\.tsx?$/.test(entry.name)) out.push(rel);
  }
  return out;
}

function imports(file: string): string[] {
  return importSpecifiers(readFileSync(path.join(ROOT, file), 'utf8'));
}

function violations(files: string[], forbidden: (spec: string, file: string) => boolean): string[] {
  return files.flatMap((f) =>
    imports(f)
      .filter((s) => forbidden(s, f))
      .map((s) => `${f} imports ${s}`),
  );
}

describe('architecture', () => {
  it('the client never imports server or workers code', () => {
    expect(
      violations(sourceFiles('client/src'), (s) =>
        /(^|\/)(server|workers)\/|@gateway\/(server|workers)/.test(s),
      ),
    ).toEqual([]);
  });

  it("shared's root entry stays browser-safe (no Node.js built-ins, no server code)", () => {
    const files = sourceFiles('shared/src').filter((f) => !f.endsWith('.test.ts'));
    expect(
      violations(
        files,
        (s) => s.startsWith('node:') || /^(fs|path|crypto|os|http|net)$/.test(s) || s.includes('server/'),
      ),
    ).toEqual([]);
  });

  it('only repositories and the database layer import drizzle or the database module', () => {
    const files = sourceFiles('server/src').filter((f) => !f.endsWith('.test.ts'));
    const allowed = (f: string) =>
      f.endsWith('.repository.ts') ||
      f.endsWith('.schema.ts') ||
      f.includes('/platform/db/') ||
      f.endsWith('runtime.ts');
    expect(
      violations(
        files.filter((f) => !allowed(f)),
        (s) => s.startsWith('drizzle-orm') || s.startsWith('pg') || s.includes('@electric-sql/pglite'),
      ),
    ).toEqual([]);
  });

  it('a feature imports another feature only through its index.ts', () => {
    const files = sourceFiles('server/src/features');
    expect(
      violations(files, (s, f) => {
        const own = f.split('/')[3];
        const m = s.match(/^\.\.\/(?:\.\.\/features\/)?([\w-]+)\/(.+)$/);
        if (!m || m[1] === own || m[1] === 'platform' || m[2] === 'index.ts') return false;
        // The one exception: tables may reference another feature's table (foreign keys), and
        // repositories may join it. Only schema modules cross, never services.
        return !(m[2]!.endsWith('.schema.ts') && (f.endsWith('.schema.ts') || f.endsWith('.repository.ts')));
      }),
    ).toEqual([]);
  });

  it('no file of server/src imports itself back, directly or through others', () => {
    const files = sourceFiles('server/src').filter((f) => !f.endsWith('.test.ts'));
    const sources = new Map(
      files.map((f) => [f.split(path.sep).join('/'), readFileSync(path.join(ROOT, f), 'utf8')]),
    );
    expect(findCycles(importGraph(sources))).toEqual([]);
  });

  it('core and platform never import a feature or the composition root', () => {
    const files = [...sourceFiles('server/src/core'), ...sourceFiles('server/src/platform')];
    expect(
      violations(
        files,
        // The one exception: the schema index gathers every feature's tables for drizzle.
        (s, f) =>
          /(^|\/)features\/|(^|\/)(runtime[\w.]*|routes)\.ts$/.test(s) &&
          !(f.endsWith(path.join('platform', 'db', 'schema.ts')) && s.endsWith('.schema.ts')),
      ),
    ).toEqual([]);
  });
});

describe('the import cycle finder', () => {
  it('reports a circle through import type, export from and a dynamic import', () => {
    const sources = new Map([
      ['src/a.ts', "import type { B } from './b.ts';\nexport const a = 1;"],
      ['src/b.ts', "export { c } from './sub/c.ts';\nexport type B = number;"],
      ['src/sub/c.ts', "export const c = 2;\nexport async function load() {\n  return import('../a.ts');\n}"],
      ['src/d.ts', "import './d.ts';"],
      ['src/e.ts', "import { a } from './a.ts';\nimport { readFileSync } from 'node:fs';"],
    ]);
    expect(findCycles(importGraph(sources))).toEqual([
      ['src/a.ts', 'src/b.ts', 'src/sub/c.ts'],
      ['src/d.ts'],
    ]);
  });

  it('reports none when every import points one way', () => {
    const sources = new Map([
      ['src/a.ts', "import { b } from './b.ts';\nimport type { C } from './c.ts';"],
      ['src/b.ts', "export { c as b } from './c.ts';"],
      ['src/c.ts', "import { readFileSync } from 'node:fs';\nexport const c = 1;"],
    ]);
    expect(findCycles(importGraph(sources))).toEqual([]);
  });

  it('a two-file circle is reported once, with both files', () => {
    expect(
      findCycles(
        new Map([
          ['x.ts', ['y.ts']],
          ['y.ts', ['x.ts']],
          ['z.ts', ['x.ts']],
        ]),
      ),
    ).toEqual([['x.ts', 'y.ts']]);
  });
});
