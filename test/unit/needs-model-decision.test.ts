import { modelId } from '../../src/core/identity';
import { decideNeedsModel, type NeedsModelFacts } from '../../src/core/needs-model';
import type { Resolution } from '../../src/core/resolution';

const SHA = 'abc1234def567890abc1234def567890abc12345';

interface Extra {
  force?: boolean;
  /** C's own folder is complete. */
  complete?: boolean;
  partial?: boolean;
  /** Another folder serves C by this rule. */
  servedBy?: 'ancestor' | 'newest';
}

function facts(version: string, baseVersion: string | undefined, extra: Extra = {}): NeedsModelFacts {
  const id = modelId(version, SHA);
  const own = `${id.name}/`;
  let resolution: Resolution;
  if (extra.complete) resolution = { found: true, folder: own, rule: 'this-commit', reason: 'own' };
  else if (extra.servedBy)
    resolution = { found: true, folder: `${version}-fedcba9/`, rule: extra.servedBy, reason: 'same inputs' };
  else
    resolution = {
      found: false,
      folder: own,
      partial: !!extra.partial,
      reason: `no stored model of version ${version}`,
    };
  return { id, baseVersion, baseRef: 'origin/main', resolution, force: !!extra.force };
}

describe('decideNeedsModel', () => {
  it.each<[string, NeedsModelFacts, boolean, string, RegExp]>([
    [
      'version bump',
      facts('1.3.0', '1.2.0'),
      true,
      'version-bump',
      /^version changed 1\.2\.0 -> 1\.3\.0 against origin\/main/,
    ],
    ['bump to pre-release', facts('1.3.0-rc.1', '1.2.0'), true, 'version-bump', /1\.2\.0 -> 1\.3\.0-rc\.1/],
    ['release after its pre-release', facts('1.3.0', '1.3.0-rc.1'), true, 'version-bump', /version changed/],
    ['1.10.0 after 1.9.0 (numeric order)', facts('1.10.0', '1.9.0'), true, 'version-bump', /version changed/],
    [
      'unchanged',
      facts('1.2.0', '1.2.0'),
      false,
      'unchanged',
      /^version 1\.2\.0 is unchanged against origin\/main/,
    ],
    // defect 3: a rollback with no stored model of its inputs used to answer "reuses the older model"
    [
      'rollback with no stored model of its inputs builds one',
      facts('1.1.0', '1.2.0'),
      true,
      'rollback',
      /lower than 1\.2\.0 at origin\/main, a rollback, but no stored model of version 1\.1\.0: building 1\.1\.0-abc1234$/,
    ],
    [
      'rollback served by the older model',
      facts('1.1.0', '1.2.0', { servedBy: 'newest' }),
      false,
      'newest',
      /^reuses 1\.1\.0-fedcba9\/: same inputs$/,
    ],
    ['rollback 1.9.0 after 1.10.0', facts('1.9.0', '1.10.0'), true, 'rollback', /a rollback/],
    [
      'new config',
      facts('1.0.0', undefined),
      true,
      'new-model',
      /^new model: the config does not exist at origin\/main/,
    ],
    [
      'force with the version unchanged',
      facts('1.2.0', '1.2.0', { force: true }),
      true,
      'forced',
      /^forced: no complete model 1\.2\.0-abc1234/,
    ],
    [
      'force builds its own folder although another serves',
      facts('1.2.0', '1.2.0', { force: true, servedBy: 'ancestor' }),
      true,
      'forced',
      /^forced: .*1\.2\.0-fedcba9\/ has the same inputs but force builds this commit's own/,
    ],
    [
      'merge commit: the branch model serves, no build',
      facts('1.3.0', '1.2.0', { servedBy: 'ancestor' }),
      false,
      'ancestor',
      /^reuses 1\.3\.0-fedcba9\//,
    ],
    [
      'complete in store wins over a bump',
      facts('1.3.0', '1.2.0', { complete: true }),
      false,
      'this-commit',
      /^a complete model 1\.3\.0-abc1234 is already in the store$/,
    ],
    [
      'complete in store wins over force',
      facts('1.3.0', '1.2.0', { complete: true, force: true }),
      false,
      'this-commit',
      /already in the store/,
    ],
    [
      'partial is noted on a bump',
      facts('1.3.0', '1.2.0', { partial: true }),
      true,
      'version-bump',
      /no model 1\.3\.0-abc1234 is in the store \(an incomplete earlier attempt will be replaced\)$/,
    ],
    [
      'partial is noted for a new config',
      facts('1.0.0', undefined, { partial: true }),
      true,
      'new-model',
      /incomplete/,
    ],
    [
      'partial is noted when forced',
      facts('1.0.0', '1.0.0', { partial: true, force: true }),
      true,
      'forced',
      /^forced.*incomplete earlier attempt/,
    ],
    [
      'partial with unchanged version builds nothing',
      facts('1.2.0', '1.2.0', { partial: true }),
      false,
      'unchanged',
      /unchanged/,
    ],
  ])('%s', (_name, f, needsModel, rule, reason) => {
    const d = decideNeedsModel(f);
    expect(d.needsModel).toBe(needsModel);
    expect(d.rule).toBe(rule);
    expect(d.reason).toMatch(reason);
  });

  it('names the folder that serves, or the one to build', () => {
    expect(decideNeedsModel(facts('1.3.0', '1.2.0', { servedBy: 'ancestor' })).folder).toBe('1.3.0-fedcba9/');
    expect(decideNeedsModel(facts('1.3.0', '1.2.0')).folder).toBe('1.3.0-abc1234/');
  });
});
