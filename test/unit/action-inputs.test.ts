import { inputEnvName, readInputs, secretValues } from '../../src/action/inputs';
import { main } from '../../src/action/main';
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

describe('secret inputs are masked before anything is parsed', () => {
  const KEY =
    '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';

  it('secretValues: every spelling of a secret input and its variables, whole and line by line', () => {
    const specs: OptionSpec[] = [
      { name: 'ssh-private-key', description: '', type: 'string', secret: true, env: ['MP_KEY'] },
      { name: 'force', description: '', type: 'boolean' },
    ];
    expect(
      secretValues(specs, {
        'INPUT_SSH-PRIVATE-KEY': KEY,
        MP_KEY: 'other-key',
        INPUT_FORCE: 'not-secret',
      }).sort(),
    ).toEqual([KEY, ...KEY.split('\n'), 'other-key'].sort());
  });

  it('the action masks them first, then fails on a bad input without showing them', async () => {
    const written: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      await main({
        INPUT_COMMAND: 'train',
        'INPUT_SSH-PRIVATE-KEY': KEY,
        'INPUT_MAX-RUNTIME': 'b3BlbnNzaC1rZXktdjEAAAAA',
        INPUT_BACKEND: 'nope',
        PATH: process.env.PATH,
      });
    } finally {
      process.stdout.write = write;
      process.exitCode = 0;
    }
    const out = written.join('');
    const firstError = out.indexOf('::error::');
    expect(firstError).toBeGreaterThan(0);
    for (const line of KEY.split('\n')) {
      const masked = out.indexOf(`::add-mask::${line}`);
      expect(masked).toBeGreaterThanOrEqual(0);
      expect(masked).toBeLessThan(firstError);
    }
    expect(out.slice(firstError)).not.toMatch(/b3BlbnNzaC1rZXktdjEAAAAA/);
  });
});
