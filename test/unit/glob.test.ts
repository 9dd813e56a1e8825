import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { globFiles, globToRegExp, isGlob } from '../../src/adapters/local/glob';

describe('globToRegExp', () => {
  it.each<[string, string[], string[]]>([
    [
      'models/*/search-config.toml',
      ['models/a/search-config.toml', 'models/b-1/search-config.toml'],
      [
        'models/search-config.toml',
        'models/a/b/search-config.toml',
        'xmodels/a/search-config.toml',
        'models/a/search-configXtoml',
      ],
    ],
    [
      '**/search-config.toml',
      ['search-config.toml', 'a/search-config.toml', 'a/b/c/search-config.toml'],
      ['a/xsearch-config.toml', 'search-config.toml.bak'],
    ],
    ['models/**', ['models/a', 'models/a/b/c.toml'], ['model/a']],
    ['models/**/c.toml', ['models/c.toml', 'models/a/b/c.toml'], ['models/a/bc.toml']],
    ['m?/c.toml', ['m1/c.toml'], ['m12/c.toml', 'm/c.toml', 'm//c.toml']],
    ['a+b(1)/[x].toml', ['a+b(1)/[x].toml'], ['aab(1)/x.toml', 'a+b1/[x].toml']],
  ])('%s', (pattern, yes, no) => {
    const re = globToRegExp(pattern);
    for (const p of yes) expect(`${p}: ${re.test(p)}`).toBe(`${p}: true`);
    for (const p of no) expect(`${p}: ${re.test(p)}`).toBe(`${p}: false`);
  });

  it('isGlob spots wildcards', () => {
    expect(isGlob('models/*/c.toml')).toBe(true);
    expect(isGlob('m?.toml')).toBe(true);
    expect(isGlob('models/a/c.toml')).toBe(false);
  });
});

describe('globFiles', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mp-glob-'));
  const files = [
    'search-config.toml',
    'models/b/search-config.toml',
    'models/a/search-config.toml',
    'models/a/deep/search-config.toml',
    'models/a/other.toml',
    'node_modules/x/search-config.toml',
    '.git/search-config.toml',
    '.model-store/m/search-config.toml',
  ];
  beforeAll(() => {
    for (const f of files) {
      mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
      writeFileSync(path.join(dir, f), 'version = "1.0.0"\n');
    }
    mkdirSync(path.join(dir, 'models/c'), { recursive: true });
  });

  it('lists matches sorted, relative, with forward slashes', async () => {
    expect(await globFiles(dir, 'models/*/search-config.toml')).toEqual([
      'models/a/search-config.toml',
      'models/b/search-config.toml',
    ]);
    expect(await globFiles(dir, './models/*/search-config.toml')).toHaveLength(2);
  });

  it('walks across folders for ** but skips node_modules, .git and the local store', async () => {
    expect(await globFiles(dir, '**/search-config.toml')).toEqual([
      'models/a/deep/search-config.toml',
      'models/a/search-config.toml',
      'models/b/search-config.toml',
      'search-config.toml',
    ]);
  });

  it('returns nothing when the fixed part does not exist', async () => {
    expect(await globFiles(dir, 'nowhere/*/search-config.toml')).toEqual([]);
  });
});
