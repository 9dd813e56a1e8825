import { UserError } from '../../src/core/errors';
import { fileMismatches, unsafeFileNames } from '../../src/core/gates';
import type { Manifest } from '../../src/core/manifest';
import {
  checkAliasName,
  checkPromotionOrder,
  groupListing,
  parseEnvironment,
  placeOf,
  registryKeys,
  resolveModelRef,
} from '../../src/core/registry';

describe('resolveModelRef', () => {
  it('takes the needs-model output, the bare folder, a URI, with or without the slash', () => {
    for (const given of [
      'models/1.2.0-abc1234/',
      'models/1.2.0-abc1234',
      '1.2.0-abc1234',
      's3://b/models/1.2.0-abc1234/',
    ]) {
      const r = resolveModelRef(given, 'models', 's3://b/');
      expect(r.folder).toBe('models/1.2.0-abc1234/');
      expect(r.scope).toBe('models/');
      expect(r.id).toMatchObject({ version: '1.2.0', sha7: 'abc1234' });
    }
  });

  it('keeps a model-name sub-folder as the scope', () => {
    const r = resolveModelRef('search/2.0.0-rc.1-abcdef0/', '', '');
    expect(r).toMatchObject({ folder: 'search/2.0.0-rc.1-abcdef0/', scope: 'search/' });
    expect(resolveModelRef('1.0.0-abcdef0', '', '').scope).toBe('');
  });

  it('rejects what is not a model folder, and other stores', () => {
    expect(() => resolveModelRef('models/latest/', '', '')).toThrow(UserError);
    expect(() => resolveModelRef('1.2-abc1234', '', '')).toThrow(/<semver>-<sha7>/);
    expect(() => resolveModelRef('', '', '')).toThrow(/empty/);
    expect(() => resolveModelRef('s3://other/1.0.0-abcdef0/', '', 's3://mine/')).toThrow(/not in this store/);
  });
});

describe('layout', () => {
  it('places registry state beside the model folders of its scope', () => {
    expect(registryKeys.pointer('', 'staging')).toBe('_registry/environments/staging.json');
    expect(registryKeys.pointer('m/search/', 'production')).toBe(
      'm/search/_registry/environments/production.json',
    );
    expect(registryKeys.history('', 'development', 12)).toBe('_registry/history/development/0000000012.json');
    expect(registryKeys.marker('m/1.0.0-abcdef0/', 'production')).toBe('m/1.0.0-abcdef0/production');
  });

  it('recognises model folders at the root or one model name down, and nothing else', () => {
    expect(placeOf('m/1.0.0-abcdef0/model.zip', 'm')).toMatchObject({
      kind: 'model',
      scope: 'm/',
      name: 'model.zip',
    });
    expect(placeOf('m/search/1.0.0-abcdef0/staging', 'm')).toMatchObject({
      kind: 'model',
      scope: 'm/search/',
      folder: 'm/search/1.0.0-abcdef0/',
    });
    expect(placeOf('m/_registry/environments/staging.json', 'm')).toEqual({ kind: 'registry', scope: 'm/' });
    expect(placeOf('m/search/_registry/aliases/a.json', 'm')).toEqual({
      kind: 'registry',
      scope: 'm/search/',
    });
    for (const k of [
      'm/1.0.0-abcdef0',
      'm/v1.0.0-abcdef0/model.zip',
      'm/1.0-abcdef0/x',
      'other/1.0.0-abcdef0/x',
      'm/a/b/1.0.0-abcdef0/x',
      'm/1.0.0-ABCDEF0/x',
    ])
      expect(placeOf(k, 'm')).toEqual({ kind: 'other' });
  });

  it('groups a listing into folders with their markers', () => {
    const t = new Date(0);
    const g = groupListing(
      [
        '1.0.0-abcdef0/model.zip',
        '1.0.0-abcdef0/staging',
        '1.0.0-abcdef0/development',
        'notes.txt',
        '_registry/x',
      ].map((key) => ({ key, size: 0, lastModified: t })),
      '',
    );
    expect([...g.folders.keys()]).toEqual(['1.0.0-abcdef0/']);
    expect([...g.folders.get('1.0.0-abcdef0/')!.markers].sort()).toEqual(['development', 'staging']);
    expect(g.other).toEqual(['notes.txt']);
    expect(g.registry).toEqual(['_registry/x']);
  });
});

describe('promotion order', () => {
  it('staging needs development, production needs staging', () => {
    expect(checkPromotionOrder('development', new Set(), false).ok).toBe(true);
    expect(checkPromotionOrder('staging', new Set(['development']), false).ok).toBe(true);
    expect(checkPromotionOrder('staging', new Set(), false)).toMatchObject({
      ok: false,
      required: 'development',
    });
    expect(checkPromotionOrder('production', new Set(['development']), false)).toMatchObject({
      ok: false,
      required: 'staging',
    });
  });

  it('an override lets it through and says what was skipped', () => {
    const r = checkPromotionOrder('production', new Set(), true);
    expect(r.ok).toBe(true);
    expect(r.overridden).toMatch(/production requires .* staging/);
  });

  it('checks environment and alias names', () => {
    expect(parseEnvironment('staging')).toBe('staging');
    expect(() => parseEnvironment('prod')).toThrow(/development, staging, production/);
    expect(() => parseEnvironment(undefined)).toThrow(UserError);
    expect(checkAliasName('best-q3')).toBe('best-q3');
    expect(() => checkAliasName('../x')).toThrow(UserError);
  });
});

describe('integrity gate', () => {
  const manifest = {
    schemaVersion: 1,
    model: { name: 'm', version: '1.0.0', sha: 'a' },
    files: [
      { name: 'model.zip', size: 3, sha256: 'a'.repeat(64) },
      { name: 'cfg.toml', size: 1, sha256: 'b'.repeat(64) },
    ],
  } as Manifest;

  it('passes only an exact match', () => {
    const ok = new Map([
      ['model.zip', { size: 3, sha256: 'a'.repeat(64) }],
      ['cfg.toml', { size: 1, sha256: 'b'.repeat(64) }],
    ]);
    expect(fileMismatches(manifest, ok)).toEqual([]);
  });

  it('names missing files, size and hash differences', () => {
    const bad = new Map([['model.zip', { size: 3, sha256: 'c'.repeat(64) }]]);
    const problems = fileMismatches(manifest, bad);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/model.zip has sha256 cccc/);
    expect(problems[1]).toMatch(/cfg.toml is listed in the manifest but missing/);
    expect(
      fileMismatches(
        manifest,
        new Map([
          ['model.zip', { size: 4 }],
          ['cfg.toml', { size: 1, sha256: 'b'.repeat(64) }],
        ]),
      ),
    ).toEqual(['model.zip is 4 bytes, the manifest says 3']);
  });

  it('flags names that leave the folder', () => {
    const m = { ...manifest, files: [{ name: '../x', size: 1, sha256: 'a'.repeat(64) }] } as Manifest;
    expect(unsafeFileNames(m)).toEqual(['../x']);
    expect(unsafeFileNames(manifest)).toEqual([]);
  });
});
