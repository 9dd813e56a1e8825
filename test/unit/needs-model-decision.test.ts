import { modelId } from '../../src/core/identity';
import { decideNeedsModel, type NeedsModelFacts } from '../../src/core/needs-model';

const SHA = 'abc1234def567890abc1234def567890abc12345';

function facts(
  version: string,
  baseVersion: string | undefined,
  extra: Partial<NeedsModelFacts> = {},
): NeedsModelFacts {
  return {
    id: modelId(version, SHA),
    baseVersion,
    baseRef: 'origin/main',
    completeInStore: false,
    partialInStore: false,
    force: false,
    ...extra,
  };
}

describe('decideNeedsModel', () => {
  it.each<[string, NeedsModelFacts, boolean, RegExp]>([
    [
      'version bump',
      facts('1.3.0', '1.2.0'),
      true,
      /^version changed 1\.2\.0 -> 1\.3\.0 against origin\/main/,
    ],
    ['bump to pre-release', facts('1.3.0-rc.1', '1.2.0'), true, /version changed 1\.2\.0 -> 1\.3\.0-rc\.1/],
    ['release after its pre-release', facts('1.3.0', '1.3.0-rc.1'), true, /version changed/],
    ['1.10.0 after 1.9.0 (numeric, not string, order)', facts('1.10.0', '1.9.0'), true, /version changed/],
    ['unchanged', facts('1.2.0', '1.2.0'), false, /^version 1\.2\.0 is unchanged against origin\/main$/],
    ['rollback', facts('1.1.0', '1.2.0'), false, /lower than 1\.2\.0 at origin\/main: a rollback/],
    ['rollback 1.9.0 after 1.10.0', facts('1.9.0', '1.10.0'), false, /rollback/],
    ['rollback to a pre-release', facts('1.3.0-rc.1', '1.3.0'), false, /rollback/],
    ['new config', facts('1.0.0', undefined), true, /^new model: the config does not exist at origin\/main/],
    [
      'force with the version unchanged',
      facts('1.2.0', '1.2.0', { force: true }),
      true,
      /^forced: no complete model 1\.2\.0-abc1234/,
    ],
    ['force on a rollback', facts('1.1.0', '1.2.0', { force: true }), true, /^forced/],
    [
      'complete in store wins over a bump',
      facts('1.3.0', '1.2.0', { completeInStore: true }),
      false,
      /^a complete model 1\.3\.0-abc1234 is already in the store$/,
    ],
    [
      'complete in store wins over force',
      facts('1.3.0', '1.2.0', { completeInStore: true, force: true }),
      false,
      /already in the store/,
    ],
    [
      'complete in store wins for a new config',
      facts('1.0.0', undefined, { completeInStore: true }),
      false,
      /already in the store/,
    ],
    [
      'partial is noted on a bump',
      facts('1.3.0', '1.2.0', { partialInStore: true }),
      true,
      /no model 1\.3\.0-abc1234 is in the store \(an incomplete earlier attempt will be replaced\)$/,
    ],
    [
      'partial is noted for a new config',
      facts('1.0.0', undefined, { partialInStore: true }),
      true,
      /incomplete earlier attempt/,
    ],
    [
      'partial is noted when forced',
      facts('1.0.0', '1.0.0', { partialInStore: true, force: true }),
      true,
      /^forced.*incomplete earlier attempt/,
    ],
    [
      'partial with unchanged version builds nothing',
      facts('1.2.0', '1.2.0', { partialInStore: true }),
      false,
      /unchanged/,
    ],
  ])('%s', (_name, f, needsModel, reason) => {
    const d = decideNeedsModel(f);
    expect(d.needsModel).toBe(needsModel);
    expect(d.reason).toMatch(reason);
  });
});
