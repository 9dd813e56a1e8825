import { lineOfKey, parseModelConfig } from '../../src/core/config';
import { UserError } from '../../src/core/errors';

function errorOf(text: string, path = 'models/a/search-config.toml'): UserError {
  try {
    parseModelConfig(text, path);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected parseModelConfig to throw');
}

describe('parseModelConfig', () => {
  it('reads version, name, every value and a content hash', () => {
    const text = 'version = "1.2.3"\nname = "ranker"\n[training]\nepochs = 3\n';
    const c = parseModelConfig(text, 'search-config.toml');
    expect(c.version).toBe('1.2.3');
    expect(c.name).toBe('ranker');
    expect(c.path).toBe('search-config.toml');
    expect(c.values).toEqual({ version: '1.2.3', name: 'ranker', training: { epochs: 3 } });
    expect(c.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(parseModelConfig(text, 'other.toml').hash).toBe(c.hash);
    expect(parseModelConfig(text + '# changed\n', 'x').hash).not.toBe(c.hash);
  });

  it('accepts pre-release versions', () => {
    expect(parseModelConfig('version = "1.2.0-rc.1"\n', 'c.toml').version).toBe('1.2.0-rc.1');
  });

  it('gives path:line:col for invalid TOML', () => {
    const e = errorOf('version = "1.0.0"\nfoo = = 2\n');
    expect(e.message).toMatch(/^models\/a\/search-config\.toml:2:\d+: invalid TOML: /);
    expect(e.message).not.toContain('\n');
  });

  it('names file and key when version is missing', () => {
    const e = errorOf('name = "x"\n[training]\nversion = "1.0.0"\n');
    expect(e.message).toBe('models/a/search-config.toml: key "version" is missing');
  });

  it.each([
    ['1.2', 2],
    ['latest', 2],
    ['v1.2.3', 2],
    ['1.2.3.4', 2],
    ['', 2],
  ])('rejects non-semver version "%s" with file, line and key', (v, line) => {
    const e = errorOf(`# model\nversion = "${v}"\n`);
    expect(e.message).toBe(
      `models/a/search-config.toml:${line}: key "version" must be a semantic version like 1.2.3, got "${v}"`,
    );
  });

  it.each(['1', '1.2', 'true', '[1, 2]'])('rejects a version that is not a string: %s', (v) => {
    const e = errorOf(`name = "m"\n\nversion = ${v}\n`);
    expect(e.message).toBe('models/a/search-config.toml:3: key "version" must be a string');
  });

  it('rejects a name that cannot be a folder name', () => {
    const e = errorOf('version = "1.0.0"\nname = "../evil"\n');
    expect(e.message).toMatch(/^models\/a\/search-config\.toml:2: key "name" may hold only/);
  });
});

describe('lineOfKey', () => {
  it('finds top-level keys only, quoted or not', () => {
    const text = 'a = 1\n  "version" = "1"\n[t]\nname = "x"\n';
    expect(lineOfKey(text, 'version')).toBe(2);
    expect(lineOfKey(text, 'a')).toBe(1);
    expect(lineOfKey(text, 'name')).toBeUndefined();
    expect(lineOfKey('versions = 1\n', 'version')).toBeUndefined();
  });
});
