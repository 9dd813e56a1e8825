import { UserError } from '../../src/core/errors';
import { mergeOptionSpecs, resolveOptions, unknownInputs, type OptionSpec } from '../../src/core/options';

const SPECS: OptionSpec[] = [
  { name: 'bucket', description: 'b', type: 'string', env: ['MP_BUCKET', 'AWS_BUCKET'] },
  { name: 'region', description: 'r', type: 'string', default: 'us-east-1', env: ['MP_REGION'] },
  { name: 'force', description: 'f', type: 'boolean', default: 'false', env: ['MP_FORCE'] },
  { name: 'count', description: 'c', type: 'integer', env: ['MP_COUNT'] },
  { name: 'types', description: 't', type: 'list', env: ['MP_TYPES'] },
  { name: 'environment', description: 'e', type: 'string', choices: ['development', 'production'] },
  { name: 'nothing', description: 'n', type: 'string' },
];

describe('resolveOptions precedence: input > env > settings file > default', () => {
  const all = {
    inputs: { region: 'in-1' },
    env: { MP_REGION: 'env-1' },
    settingsFile: { MP_REGION: 'file-1' },
  };

  it('an input wins over everything', () => {
    const o = resolveOptions(SPECS, all);
    expect(o.string('region')).toBe('in-1');
    expect(o.origin('region')).toBe('input');
  });

  it('then the environment', () => {
    const o = resolveOptions(SPECS, { ...all, inputs: {} });
    expect(o.string('region')).toBe('env-1');
    expect(o.origin('region')).toBe('$MP_REGION');
  });

  it('then the settings file', () => {
    const o = resolveOptions(SPECS, { ...all, inputs: {}, env: {} });
    expect(o.string('region')).toBe('file-1');
    expect(o.origin('region')).toBe('settings file MP_REGION');
  });

  it('then the default', () => {
    const o = resolveOptions(SPECS, { inputs: {}, env: {} });
    expect(o.string('region')).toBe('us-east-1');
    expect(o.origin('region')).toBe('default');
  });

  it('treats empty inputs and variables as not given', () => {
    const o = resolveOptions(SPECS, {
      inputs: { region: '' },
      env: { MP_REGION: '' },
      settingsFile: { MP_REGION: '' },
    });
    expect(o.string('region')).toBe('us-east-1');
  });

  it('takes the first listed variable, and any variable beats the settings file', () => {
    expect(
      resolveOptions(SPECS, { inputs: {}, env: { MP_BUCKET: 'a', AWS_BUCKET: 'b' } }).string('bucket'),
    ).toBe('a');
    expect(resolveOptions(SPECS, { inputs: {}, env: { AWS_BUCKET: 'b' } }).string('bucket')).toBe('b');
    const o = resolveOptions(SPECS, {
      inputs: {},
      env: { AWS_BUCKET: 'env' },
      settingsFile: { MP_BUCKET: 'file' },
    });
    expect(o.string('bucket')).toBe('env');
  });

  it('leaves options without a value unset', () => {
    const o = resolveOptions(SPECS, { inputs: {}, env: {} });
    expect(o.has('nothing')).toBe(false);
    expect(o.string('nothing')).toBeUndefined();
    expect(() => o.require('nothing')).toThrow(
      new UserError('missing required setting: set the nothing input'),
    );
    expect(o.toRecord()).toEqual({ region: 'us-east-1', force: false });
  });
});

describe('typed values', () => {
  it.each([
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['yes', true],
    ['on', true],
    ['false', false],
    ['0', false],
    ['No', false],
    ['off', false],
  ])('boolean "%s" is %s', (raw, want) => {
    expect(resolveOptions(SPECS, { inputs: { force: raw }, env: {} }).bool('force')).toBe(want);
  });

  it('rejects a boolean that is neither, naming the option and where it came from', () => {
    expect(() => resolveOptions(SPECS, { inputs: {}, env: { MP_FORCE: 'maybe' } })).toThrow(
      new UserError('force (from $MP_FORCE) must be true or false, got "maybe"'),
    );
  });

  it('reads whole numbers and rejects anything else', () => {
    expect(resolveOptions(SPECS, { inputs: { count: ' 42 ' }, env: {} }).int('count')).toBe(42);
    expect(resolveOptions(SPECS, { inputs: { count: '-3' }, env: {} }).int('count')).toBe(-3);
    for (const bad of ['1.5', '1e3', 'ten', '12abc']) {
      expect(() => resolveOptions(SPECS, { inputs: { count: bad }, env: {} })).toThrow(
        new UserError(`the count input must be a whole number, got "${bad}"`),
      );
    }
    expect(resolveOptions(SPECS, { inputs: {}, env: {} }).int('count')).toBeUndefined();
  });

  it('checks choices', () => {
    expect(
      resolveOptions(SPECS, { inputs: { environment: ' production ' }, env: {} }).string('environment'),
    ).toBe('production');
    expect(() => resolveOptions(SPECS, { inputs: { environment: 'prod' }, env: {} })).toThrow(
      new UserError('the environment input must be one of development, production; got "prod"'),
    );
  });

  it('never echoes a value from the settings file or of a secret option', () => {
    const token: OptionSpec = {
      name: 'token',
      description: 't',
      type: 'integer',
      secret: true,
      env: ['MP_TOKEN'],
    };
    const specs = [...SPECS, token];
    const errorOf = (f: () => unknown): string => {
      try {
        f();
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    };
    const fromFile = errorOf(() =>
      resolveOptions(specs, { inputs: {}, env: {}, settingsFile: { MP_FORCE: 'SECRET-ish' } }),
    );
    expect(fromFile).toBe('force (from settings file MP_FORCE) must be true or false');
    const secret = errorOf(() => resolveOptions(specs, { inputs: { token: 'SECRET-ish' }, env: {} }));
    expect(secret).toBe('the token input must be a whole number');
  });

  it('splits lists on commas and newlines, dropping blanks', () => {
    const o = resolveOptions(SPECS, { inputs: { types: 'c5.xlarge, m5.large\n\n g5.xlarge ,' }, env: {} });
    expect(o.list('types')).toEqual(['c5.xlarge', 'm5.large', 'g5.xlarge']);
    expect(resolveOptions(SPECS, { inputs: {}, env: {} }).list('types')).toEqual([]);
  });
});

describe('unknownInputs', () => {
  it('lists the names no spec declares', () => {
    expect(unknownInputs(SPECS, ['bucket', 'bukket', 'force', 'x'])).toEqual(['bukket', 'x']);
    expect(unknownInputs(SPECS, [])).toEqual([]);
  });
});

describe('mergeOptionSpecs', () => {
  const a: OptionSpec = { name: 'a', description: 'A', type: 'string' };
  const b: OptionSpec = { name: 'b', description: 'B', type: 'boolean' };

  it('keeps one copy of identical specs, in first-seen order', () => {
    expect(mergeOptionSpecs([[a, b], [{ ...a }], [b]]).map((s) => s.name)).toEqual(['a', 'b']);
  });

  it('refuses one name with two meanings', () => {
    expect(() => mergeOptionSpecs([[a], [{ ...a, type: 'integer' }]])).toThrow(
      'option "a" is defined twice with different meanings',
    );
  });
});
