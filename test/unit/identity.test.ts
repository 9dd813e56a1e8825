import { UserError } from '../../src/core/errors';
import { joinKey, modelId, modelPrefix, normalizeSha, parseModelName } from '../../src/core/identity';

const SHA = 'ABC1234def567890abc1234def567890abc12345';

describe('modelId', () => {
  it('names a model <version>-<sha7> with a lower-cased sha', () => {
    expect(modelId('1.2.3', SHA)).toEqual({ version: '1.2.3', sha7: 'abc1234', name: '1.2.3-abc1234' });
    expect(modelId('1.2.0-rc.1', 'abc1234').name).toBe('1.2.0-rc.1-abc1234');
  });

  it.each(['1.2', 'latest', 'v1.2.3', '1.2.3+build.5', ''])('rejects version "%s"', (v) => {
    expect(() => modelId(v, SHA)).toThrow(UserError);
  });

  it.each(['abc123', 'xyz1234', '', 'a'.repeat(41)])('rejects sha "%s"', (sha) => {
    expect(() => modelId('1.0.0', sha)).toThrow(/is not a git commit sha/);
  });

  it('round-trips through parseModelName', () => {
    for (const v of ['0.0.1', '1.2.3', '10.20.30', '1.2.0-rc.1', '2.0.0-alpha-beta.3']) {
      const id = modelId(v, SHA);
      expect(parseModelName(id.name)).toEqual(id);
    }
  });
});

describe('normalizeSha', () => {
  it('trims and lower-cases', () => {
    expect(normalizeSha(' ABCDEF0 \n')).toBe('abcdef0');
  });
});

describe('parseModelName', () => {
  it('parses plain and pre-release names, with or without a trailing slash', () => {
    expect(parseModelName('1.2.3-abc1234/')).toEqual({
      version: '1.2.3',
      sha7: 'abc1234',
      name: '1.2.3-abc1234',
    });
    expect(parseModelName('1.2.0-rc.1-abc1234')).toEqual({
      version: '1.2.0-rc.1',
      sha7: 'abc1234',
      name: '1.2.0-rc.1-abc1234',
    });
  });

  it.each([
    'latest',
    'development',
    '1.2.3',
    '1.2.3-',
    '-abc1234',
    '1.2-abc1234',
    '1.2.3-abc123',
    '1.2.3-abc12345',
    '1.2.3-ABC1234',
    '1.2.3-abc123g',
    'v1.2.3-abc1234',
    '1.2.3+b-abc1234',
    '.mp-tmp',
    '',
  ])('rejects non-model name "%s"', (name) => {
    expect(parseModelName(name)).toBeUndefined();
  });

  it('never reads 1.2.10-<sha> as version 1.2.1', () => {
    expect(parseModelName('1.2.10-abc1234')?.version).toBe('1.2.10');
    expect(modelId('1.2.1', SHA).name).not.toBe(parseModelName('1.2.10-abc1234')?.name);
    expect('1.2.10-abc1234/'.startsWith(modelPrefix('', modelId('1.2.1', 'abc1234')))).toBe(false);
  });
});

describe('joinKey and modelPrefix', () => {
  it('joins with single slashes and drops empty parts', () => {
    expect(joinKey('', 'a/', '/b', '', 'c')).toBe('a/b/c');
    expect(joinKey('')).toBe('');
  });

  it('builds the folder under an optional root and model name', () => {
    const id = modelId('1.0.0', SHA);
    expect(modelPrefix('', id)).toBe('1.0.0-abc1234/');
    expect(modelPrefix('models/', id, 'ranker')).toBe('models/ranker/1.0.0-abc1234/');
  });
});
