import fc from 'fast-check';
import { ENVIRONMENTS, groupListing, type Environment, type ModelFolder } from '../../src/core/registry';
import { planRotation, type Liveness, type RotationFacts } from '../../src/core/rotation';

const DAY = 24 * 60 * 60 * 1000;
const NOW = new Date('2025-06-01T00:00:00Z');
const ago = (days: number): Date => new Date(NOW.getTime() - days * DAY);

function folders(objects: { key: string; size?: number; at: Date }[], root = ''): ModelFolder[] {
  return [
    ...groupListing(
      objects.map((o) => ({ key: o.key, size: o.size ?? 1, lastModified: o.at })),
      root,
    ).folders.values(),
  ];
}

function model(folder: string, days: number, markers: string[] = ['development']) {
  return [
    { key: `${folder}model.zip`, at: ago(days) },
    { key: `${folder}manifest.json`, at: ago(days) },
    ...markers.map((m) => ({ key: `${folder}${m}`, size: 0, at: ago(days) })),
  ];
}

const gone: Liveness = { live: false, detail: 'commit is on no live branch' };

function facts(fs: ModelFolder[], over: Partial<RotationFacts> = {}): RotationFacts {
  return {
    folders: fs,
    pointed: new Map(),
    liveness: new Map(fs.map((f) => [f.folder, gone])),
    references: new Map(fs.map((f) => [f.folder, []])),
    now: NOW,
    graceDays: 14,
    keepPerVersion: 1,
    ...over,
  };
}

const action = (plan: ReturnType<typeof planRotation>, folder: string) =>
  plan.entries.find((e) => e.folder === folder)?.action;

describe('rotation planner', () => {
  const fs = folders([
    ...model('1.0.0-aaaaaaa/', 100),
    ...model('1.0.0-bbbbbbb/', 90),
    ...model('1.0.0-ccccccc/', 80, ['development', 'staging']),
    ...model('1.0.0-ddddddd/', 70),
    ...model('1.0.0-eeeeeee/', 3),
    ...model('2.0.0-fffffff/', 60, ['development', 'staging', 'production']),
  ]);

  it('deletes old dev-only models on gone branches; keeps markers, the newest per version, the grace period', () => {
    const plan = planRotation(facts(fs));
    expect(action(plan, '1.0.0-aaaaaaa/')).toBe('delete');
    expect(action(plan, '1.0.0-bbbbbbb/')).toBe('delete');
    expect(action(plan, '1.0.0-ddddddd/')).toBe('delete');
    expect(action(plan, '1.0.0-ccccccc/')).toBe('keep');
    expect(action(plan, '1.0.0-eeeeeee/')).toBe('keep'); // newest of 1.0.0 and in grace
    expect(action(plan, '2.0.0-fffffff/')).toBe('keep');
    const c = plan.entries.find((e) => e.folder === '1.0.0-ccccccc/')!;
    expect(c.reasons).toContain('has a staging marker');
    const a = plan.entries.find((e) => e.folder === '1.0.0-aaaaaaa/')!;
    expect(a.reasons).toEqual([
      'only reached development',
      'commit is on no live branch',
      'untouched for 100 days',
    ]);
  });

  it('deletes manifests first, then the rest of the folder', () => {
    const plan = planRotation(facts(fs));
    const manifests = plan.deleteKeys.filter((k) => k.endsWith('manifest.json'));
    expect(plan.deleteKeys.slice(0, manifests.length)).toEqual(manifests);
    expect(plan.deleteKeys).toHaveLength(9);
  });

  it('keeps the newest N per version and what a pointer names', () => {
    const plan = planRotation(
      facts(fs, {
        keepPerVersion: 3,
        pointed: new Map([['1.0.0-aaaaaaa/', ['development' as Environment]]]),
      }),
    );
    expect(action(plan, '1.0.0-aaaaaaa/')).toBe('keep');
    expect(action(plan, '1.0.0-bbbbbbb/')).toBe('delete');
    expect(action(plan, '1.0.0-ddddddd/')).toBe('keep');
  });

  it('keeps commits on live branches and asks for unknown liveness', () => {
    const liveness = new Map<string, Liveness>([['1.0.0-aaaaaaa/', { live: true, detail: 'feature-x' }]]);
    const plan = planRotation(facts(fs, { liveness }));
    expect(action(plan, '1.0.0-aaaaaaa/')).toBe('keep');
    expect(plan.entries.find((e) => e.folder === '1.0.0-aaaaaaa/')!.reasons).toContain(
      'commit is on live branch feature-x',
    );
    expect(action(plan, '1.0.0-bbbbbbb/')).toBe('keep');
    expect(plan.needLiveness).toEqual(['1.0.0-bbbbbbb/', '1.0.0-ddddddd/']);
  });

  it('protects folders referenced by kept manifests, transitively, and asks for missing manifests', () => {
    const references = new Map<string, string[]>([
      ['2.0.0-fffffff/', ['1.0.0-aaaaaaa/model.zip']],
      ['1.0.0-aaaaaaa/', ['1.0.0-bbbbbbb/']],
      ['1.0.0-ccccccc/', []],
      ['1.0.0-eeeeeee/', []],
    ]);
    const plan = planRotation(facts(fs, { references }));
    expect(action(plan, '1.0.0-aaaaaaa/')).toBe('keep');
    expect(action(plan, '1.0.0-bbbbbbb/')).toBe('keep');
    expect(action(plan, '1.0.0-ddddddd/')).toBe('delete');
    expect(planRotation(facts(fs, { references: new Map() })).needManifests.sort()).toEqual([
      '1.0.0-ccccccc/',
      '1.0.0-eeeeeee/',
      '2.0.0-fffffff/',
    ]);
  });

  it('keeps what anyone points at: aliases, recent deployments, the model of a kept commit', () => {
    const plan = planRotation(
      facts(fs, {
        aliases: new Map([['1.0.0-aaaaaaa/', ['golden', 'baseline']]]),
        deployments: new Map([
          ['1.0.0-bbbbbbb/', [{ environment: 'development', at: ago(2) }]],
          ['1.0.0-ddddddd/', [{ environment: 'development', at: ago(30) }]],
        ]),
        servesCommits: new Map(),
      }),
    );
    const reasons = (f: string) => plan.entries.find((e) => e.folder === f)!.reasons.join('; ');
    expect(action(plan, '1.0.0-aaaaaaa/')).toBe('keep');
    expect(reasons('1.0.0-aaaaaaa/')).toMatch(/alias golden points at it; alias baseline points at it/);
    expect(action(plan, '1.0.0-bbbbbbb/')).toBe('keep');
    expect(reasons('1.0.0-bbbbbbb/')).toMatch(/deployed to development within the grace period/);
    // a deployment older than the grace period keeps nothing
    expect(action(plan, '1.0.0-ddddddd/')).toBe('delete');
    const served = planRotation(
      facts(fs, { servesCommits: new Map([['1.0.0-ddddddd/', ['main (abc1234)']]]) }),
    );
    expect(action(served, '1.0.0-ddddddd/')).toBe('keep');
    expect(served.entries.find((e) => e.folder === '1.0.0-ddddddd/')!.reasons).toContain(
      'the model of main (abc1234) (resolution rule)',
    );
  });

  it('an incomplete folder uses its newest object as its age', () => {
    const inc = folders([
      { key: '3.0.0-1111111/model.zip', at: ago(30) },
      { key: '3.0.0-1111111/log.txt', at: ago(2) },
      ...model('3.0.0-2222222/', 1),
    ]);
    expect(action(planRotation(facts(inc)), '3.0.0-1111111/')).toBe('keep');
  });
});

/** Keys drawn from a small alphabet so folders collide, markers land, and odd names appear. */
const segment = fc.constantFrom(
  '1.0.0-aaaaaaa',
  '1.0.0-bbbbbbb',
  '1.0.1-ccccccc',
  '2.0.0-rc.1-ddddddd',
  'search',
  'x',
  '_registry',
  '1.0-eeeeeee',
  'v1.0.0-fffffff',
);
const leaf = fc.constantFrom(
  'model.zip',
  'manifest.json',
  'development',
  'staging',
  'production',
  'benchmark_results.json',
  'cfg.toml',
);
const keyArb = fc.oneof(
  fc.tuple(segment, leaf).map(([a, b]) => `${a}/${b}`),
  fc.tuple(segment, segment, leaf).map(([a, b, c]) => `${a}/${b}/${c}`),
  fc.tuple(segment, segment, segment, leaf).map(([a, b, c, d]) => `${a}/${b}/${c}/${d}`),
  leaf,
);
const listingArb = fc.uniqueArray(fc.record({ key: keyArb, days: fc.integer({ min: 0, max: 400 }) }), {
  selector: (o) => o.key,
  maxLength: 80,
});

describe('rotation planner properties', () => {
  it('never deletes protected keys, whatever the bucket holds', () => {
    let runsWithDeletes = 0;
    fc.assert(
      fc.property(
        listingArb,
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 2 }),
        fc.func(fc.constantFrom('gone', 'gone', 'gone', 'live', 'unknown')),
        fc.func(
          fc.constantFrom<Environment[]>(
            [],
            [],
            [],
            [],
            ['development'],
            ['production'],
            ['staging', 'production'],
          ),
        ),
        fc.func(fc.oneof(fc.constant([]), fc.constant([]), fc.array(keyArb, { maxLength: 2 }))),
        fc.func(fc.constantFrom<string[]>([], [], [], ['golden'], ['golden', 'baseline'])),
        (listing, graceDays, keepPerVersion, liveFn, pointFn, refFn, aliasFn) => {
          const objects = listing.map((o) => ({ key: o.key, size: 1, lastModified: ago(o.days) }));
          const { folders: byFolder } = groupListing(objects, '');
          const all = [...byFolder.values()];
          const pointed = new Map(
            all.map((f) => [f.folder, pointFn(f.folder)] as const).filter(([, e]) => e.length > 0),
          );
          const liveness = new Map(
            all
              .filter((f) => liveFn(f.folder) !== 'unknown')
              .map((f) => [f.folder, { live: liveFn(f.folder) === 'live', detail: 'b' }] as const),
          );
          const references = new Map(all.map((f) => [f.folder, refFn(f.folder)] as const));
          const aliases = new Map(
            all.map((f) => [f.folder, aliasFn(f.folder)] as const).filter(([, a]) => a.length > 0),
          );
          const plan = planRotation({
            aliases,
            folders: all,
            pointed,
            liveness,
            references,
            now: NOW,
            graceDays,
            keepPerVersion,
          });

          const deleted = new Set(plan.deleteKeys);
          const deletedFolders = new Set(
            plan.entries.filter((e) => e.action === 'delete').map((e) => e.folder),
          );
          const keptFolders = plan.entries.filter((e) => e.action === 'keep').map((e) => e.folder);
          for (const key of deleted) {
            // only keys inside <semver>-<sha7>/ folders at depth 0 or 1 of the store
            const f = all.find((x) => x.objects.some((o) => o.key === key));
            expect(f).toBeDefined();
            expect(deletedFolders.has(f!.folder)).toBe(true);
          }
          for (const o of objects) {
            if (!all.some((f) => f.objects.some((x) => x.key === o.key)))
              expect(deleted.has(o.key)).toBe(false);
          }
          for (const f of all) {
            const gone = deletedFolders.has(f.folder);
            if (!gone) continue;
            // the protected sets
            for (const env of ['staging', 'production'] as const) expect(f.markers.has(env)).toBe(false);
            expect(pointed.has(f.folder)).toBe(false);
            expect(aliases.has(f.folder)).toBe(false);
            expect(liveness.get(f.folder)).toEqual({ live: false, detail: 'b' });
            expect(f.objects.every((o) => o.lastModified.getTime() <= NOW.getTime() - graceDays * DAY)).toBe(
              true,
            );
            for (const k of keptFolders)
              for (const ref of references.get(k) ?? [])
                expect(ref.startsWith(f.folder) || f.folder.startsWith(ref)).toBe(false);
            // whole folders only
            for (const o of f.objects) expect(deleted.has(o.key)).toBe(true);
          }
          // newest N per version survive
          const byVersion = new Map<string, ModelFolder[]>();
          for (const f of all) {
            const k = `${f.scope}|${f.id.version}`;
            byVersion.set(k, [...(byVersion.get(k) ?? []), f]);
          }
          for (const group of byVersion.values()) {
            const survivors = group.filter((f) => !deletedFolders.has(f.folder)).length;
            expect(survivors).toBeGreaterThanOrEqual(Math.min(keepPerVersion, group.length));
          }
          expect(ENVIRONMENTS).toHaveLength(3);
          if (deleted.size > 0) runsWithDeletes++;
        },
      ),
      { numRuns: 400 },
    );
    // the property is only worth something if deletions actually happen
    expect(runsWithDeletes).toBeGreaterThan(20);
  });
});
