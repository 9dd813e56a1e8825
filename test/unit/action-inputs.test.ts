import { inputEnvName, readInputs } from '../../src/action/inputs';
import type { OptionSpec } from '../../src/core/options';

const SPECS: OptionSpec[] = [
  { name: 'config-path', description: '', type: 'string', default: 'search-config.toml' },
  { name: 's3-endpoint', description: '', type: 'string' },
  { name: 'force', description: '', type: 'boolean' },
];

describe('action inputs', () => {
  it('names variables as the runner does: upper case, dashes kept', () => {
    expect(inputEnvName('config-path')).toBe('INPUT_CONFIG-PATH');
    expect(inputEnvName('s3-endpoint')).toBe('INPUT_S3-ENDPOINT');
    expect(inputEnvName('my input')).toBe('INPUT_MY_INPUT');
  });

  it('reads inputs with dashes, trims them and leaves empty ones unset', () => {
    expect(
      readInputs(SPECS, {
        'INPUT_CONFIG-PATH': '  models/*/search-config.toml\n',
        'INPUT_S3-ENDPOINT': '',
        INPUT_FORCE: '   ',
        INPUT_UNRELATED: 'x',
      }),
    ).toEqual({ 'config-path': 'models/*/search-config.toml' });
  });

  it('falls back to the underscore spelling, preferring the runner one', () => {
    expect(readInputs(SPECS, { INPUT_CONFIG_PATH: 'a.toml' })).toEqual({ 'config-path': 'a.toml' });
    expect(readInputs(SPECS, { 'INPUT_CONFIG-PATH': 'dash.toml', INPUT_CONFIG_PATH: 'under.toml' })).toEqual({
      'config-path': 'dash.toml',
    });
  });
});
