import * as fc from 'fast-check';
import {
  decideAmiBuild,
  parseAmiVersion,
  planPrune,
  TAG_AMI_VERSION,
  TAG_MANAGED,
  type ImageSummary,
} from '../../src/core/ami-lifecycle';
import { UserError } from '../../src/core/errors';

function ami(id: string, version?: string, extra: Partial<ImageSummary> = {}): ImageSummary {
  const tags: Record<string, string> = { [TAG_MANAGED]: 'true' };
  if (version !== undefined) tags[TAG_AMI_VERSION] = version;
  return { id, tags, snapshotIds: [`snap-${id}`], state: 'available', ...extra };
}

describe('parseAmiVersion', () => {
  test.each([
    ['1.0.0', '1.0.0'],
    [' 2.3.4\n', '2.3.4'],
    ['1.0.0-rc.1', '1.0.0-rc.1'],
  ])('%j', (raw, v) => {
    expect(parseAmiVersion(raw, 'ami-version')).toBe(v);
  });
  test.each([[''], ['v1.0.0'], ['1.0'], ['latest'], ['1.0.0 2.0.0']])('rejects %j', (raw) => {
    expect(() => parseAmiVersion(raw, 'ami-version')).toThrow(UserError);
  });
});

describe('decideAmiBuild', () => {
  const base = { version: '1.2.0', versionFile: '.packer/ami-version.txt', baseRef: 'abc1234' };
  test.each<[string, Parameters<typeof decideAmiBuild>[0], boolean, RegExp, string | undefined]>([
    [
      'changed, none yet: build',
      { ...base, existing: [], versionFileChanged: true, force: false },
      true,
      /\.packer\/ami-version\.txt changed against abc1234/,
      undefined,
    ],
    [
      'unchanged: no build',
      { ...base, existing: [], versionFileChanged: false, force: false },
      false,
      /did not change against abc1234; set force/,
      undefined,
    ],
    [
      'forced: build',
      { ...base, existing: [], versionFileChanged: false, force: true },
      true,
      /force is set/,
      undefined,
    ],
    [
      'first commit',
      { ...base, baseRef: undefined, existing: [], versionFileChanged: true, force: false },
      true,
      /against the first commit/,
      undefined,
    ],
    [
      'exists: never twice, even forced; newest existing reported',
      {
        ...base,
        existing: [
          ami('ami-old', '1.2.0', { createdAt: new Date('2024-01-01') }),
          ami('ami-new', '1.2.0', { createdAt: new Date('2024-02-01') }),
        ],
        versionFileChanged: true,
        force: true,
      },
      false,
      /already exists \(ami-new, ami-old\)/,
      'ami-new',
    ],
  ])('%s', (_name, input, build, reason, existingId) => {
    const d = decideAmiBuild(input);
    expect(d.build).toBe(build);
    expect(d.reason).toMatch(reason);
    expect(d.existingId).toBe(existingId);
  });
});

describe('planPrune', () => {
  const images = [
    ami('ami-10', '1.0.0'),
    ami('ami-11', '1.1.0'),
    ami('ami-12', '1.2.0'),
    ami('ami-12b', '1.2.0'),
    ami('ami-13', '1.3.0'),
    ami('ami-20', '2.0.0'),
    ami('ami-pending', '0.9.0', { state: 'pending' }),
    ami('ami-noversion'),
    ami('ami-badversion', 'banana'),
    { id: 'ami-foreign', tags: { [TAG_AMI_VERSION]: '0.1.0' }, snapshotIds: ['snap-f'] },
    { id: 'ami-false', tags: { [TAG_MANAGED]: 'false', [TAG_AMI_VERSION]: '0.1.0' }, snapshotIds: [] },
  ];

  test('keeps current, newer and N previous; deregisters the rest of the managed ones', () => {
    const plan = planPrune({ images, currentVersion: '1.3.0', keep: 1 });
    expect(plan.deregister.map((e) => e.image.id)).toEqual(['ami-11', 'ami-10']);
    expect(plan.keptVersions).toEqual(['1.2.0']);
    const kept = Object.fromEntries(plan.keep.map((e) => [e.image.id, e.reason]));
    expect(kept['ami-13']).toBe('current version');
    expect(kept['ami-12']).toMatch(/previous versions kept/);
    expect(kept['ami-12b']).toMatch(/previous versions kept/);
    expect(kept['ami-20']).toMatch(/newer than the current version 1.3.0/);
    expect(kept['ami-pending']).toBe('still being created');
    expect(kept['ami-noversion']).toMatch(/no semver/);
    expect(kept['ami-badversion']).toMatch(/no semver/);
    expect(kept['ami-foreign']).toMatch(/never touched/);
    expect(kept['ami-false']).toMatch(/never touched/);
  });

  test('keep 0 keeps only the current and newer versions; keep 10 keeps everything', () => {
    expect(planPrune({ images, currentVersion: '1.3.0', keep: 0 }).deregister.map((e) => e.image.id)).toEqual(
      ['ami-12', 'ami-12b', 'ami-11', 'ami-10'],
    );
    expect(planPrune({ images, currentVersion: '1.3.0', keep: 10 }).deregister).toEqual([]);
  });

  test('previous versions count even when the current one has no AMI yet', () => {
    const plan = planPrune({ images, currentVersion: '1.4.0', keep: 2 });
    expect(plan.keptVersions).toEqual(['1.3.0', '1.2.0']);
    expect(plan.deregister.map((e) => e.image.id)).toEqual(['ami-11', 'ami-10']);
  });

  test('semver order, not string order', () => {
    const plan = planPrune({
      images: [ami('a9', '1.9.0'), ami('a10', '1.10.0'), ami('a2', '1.2.0')],
      currentVersion: '1.11.0',
      keep: 1,
    });
    expect(plan.keptVersions).toEqual(['1.10.0']);
    expect(plan.deregister.map((e) => e.image.id)).toEqual(['a9', 'a2']);
  });

  test('keep must be a whole number >= 0', () => {
    expect(() => planPrune({ images, currentVersion: '1.0.0', keep: -1 })).toThrow(UserError);
    expect(() => planPrune({ images, currentVersion: '1.0.0', keep: 1.5 })).toThrow(UserError);
  });

  const versionArb = fc
    .tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 }))
    .map(([a, b, c]) => `${a}.${b}.${c}`);
  const imageArb = fc.record({
    managed: fc.constantFrom('true', 'false', undefined),
    version: fc.option(fc.oneof(versionArb, fc.constant('not-semver')), { nil: undefined }),
    state: fc.constantFrom('available', 'pending', 'failed'),
  });

  test('property: untagged, current and newer AMIs are never deregistered; each AMI is planned once', () => {
    fc.assert(
      fc.property(
        fc.array(imageArb, { maxLength: 30 }),
        versionArb,
        fc.integer({ min: 0, max: 5 }),
        (specs, current, keep) => {
          const imgs: ImageSummary[] = specs.map((s, i) => {
            const tags: Record<string, string> = {};
            if (s.managed !== undefined) tags[TAG_MANAGED] = s.managed;
            if (s.version !== undefined) tags[TAG_AMI_VERSION] = s.version;
            return { id: `ami-${i}`, tags, state: s.state, snapshotIds: [] };
          });
          const plan = planPrune({ images: imgs, currentVersion: current, keep });
          const ids = [...plan.keep, ...plan.deregister].map((e) => e.image.id).sort();
          expect(ids).toEqual(imgs.map((i) => i.id).sort());
          const versionsGone = new Set<string>();
          for (const e of plan.deregister) {
            expect(e.image.tags[TAG_MANAGED]).toBe('true');
            expect(e.image.tags[TAG_AMI_VERSION]).not.toBe(current);
            expect(e.image.state).not.toBe('pending');
            versionsGone.add(e.version!);
          }
          // exactly `keep` older versions survive when that many exist
          const older = new Set(plan.deregister.map((e) => e.version!).concat(plan.keptVersions));
          expect(plan.keptVersions.length).toBe(Math.min(keep, older.size));
          for (const v of plan.keptVersions) expect(versionsGone.has(v)).toBe(false);
        },
      ),
    );
  });
});
