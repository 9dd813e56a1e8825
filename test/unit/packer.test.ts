import { UserError } from '../../src/core/errors';
import {
  artifactImages,
  buildArgs,
  buildErrors,
  checksumMismatch,
  displayText,
  checksumFromSums,
  initArgs,
  needsPluginDeclaration,
  normalizeSha256,
  parseMachineReadableLine,
  parsePackerVersion,
  parseVarAssignments,
  releaseFileName,
  releaseFor,
  releaseUrl,
  supportsInit,
  validateArgs,
} from '../../src/core/packer';

describe('parseMachineReadableLine', () => {
  test.each([
    [
      '1795632911,amazon-ebs.training,artifact,0,id,us-east-1:ami-66cc24d39faf9e613',
      {
        timestamp: '1795632911',
        target: 'amazon-ebs.training',
        type: 'artifact',
        data: ['0', 'id', 'us-east-1:ami-66cc24d39faf9e613'],
      },
    ],
    [
      '1795632911,,ui,say,==> amazon-ebs.training: No volumes to clean up%!(PACKER_COMMA) skipping',
      {
        timestamp: '1795632911',
        target: '',
        type: 'ui',
        data: ['say', '==> amazon-ebs.training: No volumes to clean up, skipping'],
      },
    ],
    [
      '1795632911,,ui,say,\\n==> Builds finished.',
      { timestamp: '1795632911', target: '', type: 'ui', data: ['say', '\n==> Builds finished.'] },
    ],
    [
      '1795632911,,error-count,1\r',
      { timestamp: '1795632911', target: '', type: 'error-count', data: ['1'] },
    ],
  ])('%s', (line, expected) => {
    expect(parseMachineReadableLine(line)).toEqual(expected);
  });

  test.each([[''], ['Error: Unsupported block type'], ['==> amazon-ebs: hello'], ['12,x'], ['12,x,,y']])(
    'not machine-readable: %j',
    (line) => {
      expect(parseMachineReadableLine(line)).toBeUndefined();
    },
  );
});

describe('artifactImages', () => {
  test.each<[string, string[], { region: string; imageId: string; build: string }[]]>([
    [
      'one region',
      [
        '1,amazon-ebs.training,artifact-count,1',
        '1,amazon-ebs.training,artifact,0,builder-id,mitchellh.amazonebs',
        '1,amazon-ebs.training,artifact,0,id,us-east-1:ami-66cc24d39faf9e613',
        '1,amazon-ebs.training,artifact,0,string,AMIs were created:\\nus-east-1: ami-66cc24d39faf9e613\\n',
        '1,amazon-ebs.training,artifact,0,end',
      ],
      [{ region: 'us-east-1', imageId: 'ami-66cc24d39faf9e613', build: 'amazon-ebs.training' }],
    ],
    [
      'copies in several regions, comma escaped',
      ['1,amazon-ebs.x,artifact,0,id,eu-west-1:ami-0aa%!(PACKER_COMMA)us-west-2:ami-0bb'],
      [
        { region: 'eu-west-1', imageId: 'ami-0aa', build: 'amazon-ebs.x' },
        { region: 'us-west-2', imageId: 'ami-0bb', build: 'amazon-ebs.x' },
      ],
    ],
    ['null builder: no AMI', ['1,null.n,artifact,0,id,Null'], []],
    ['ui text that mentions an AMI is not an artifact', ['1,,ui,say,us-east-1:ami-0123'], []],
    ['no lines', [], []],
  ])('%s', (_name, lines, expected) => {
    expect(artifactImages(lines)).toEqual(expected);
  });
});

describe('displayText and buildErrors', () => {
  test.each([
    ['1,,ui,say,==> hello', { level: 'info', text: '==> hello' }],
    ['1,,ui,message,    amazon-ebs: a%!(PACKER_COMMA) b', { level: 'info', text: '    amazon-ebs: a, b' }],
    ['1,,ui,error,Build errored: boom\\n', { level: 'error', text: 'Build errored: boom' }],
    ['1,,ui,say,', undefined],
    ['1,x,artifact,0,id,us-east-1:ami-1', undefined],
  ])('%s', (line, expected) => {
    expect(displayText(parseMachineReadableLine(line)!)).toEqual(expected);
  });

  test('collects per-build error lines', () => {
    expect(
      buildErrors([
        '1,,ui,error,--> amazon-ebs.training: Script exited with non-zero exit status: 3',
        '1,amazon-ebs.training,error,Script exited with non-zero exit status: 3%!(PACKER_COMMA) see above',
        '1,,error-count,1',
      ]),
    ).toEqual(['amazon-ebs.training: Script exited with non-zero exit status: 3, see above']);
  });
});

describe('versions', () => {
  test.each([
    ['Packer v1.6.6', [1, 6, 6]],
    ['1.11.2', [1, 11, 2]],
    ['Packer v1.9.4 (abcdef)\n', [1, 9, 4]],
    ['nothing', undefined],
  ])('parsePackerVersion(%j)', (text, expected) => {
    expect(parsePackerVersion(text)).toEqual(expected);
  });

  test.each([
    [[1, 6, 6], false, false],
    [[1, 6, 99], false, false],
    [[1, 7, 0], true, false],
    [[1, 9, 4], true, false],
    [[1, 10, 0], true, true],
    [[2, 0, 0], true, true],
  ])('%j: init %s, plugin declaration %s', (v, init, plugins) => {
    expect(supportsInit(v)).toBe(init);
    expect(needsPluginDeclaration(v)).toBe(plugins);
  });
});

describe('argv', () => {
  test.each<[string, string[], string[]]>([
    ['init', initArgs('/t'), ['init', '/t']],
    ['validate, no vars', validateArgs('/t', {}), ['validate', '/t']],
    [
      'validate, vars sorted',
      validateArgs('/t', { region: 'us-east-1', ami_version: '1.0.0' }),
      ['validate', '-var', 'ami_version=1.0.0', '-var', 'region=us-east-1', '/t'],
    ],
    [
      'build: machine-readable, no colour, values kept verbatim',
      buildArgs('.packer', { x: 'a b=c', base_ami: 'ami-1' }),
      ['build', '-machine-readable', '-color=false', '-var', 'base_ami=ami-1', '-var', 'x=a b=c', '.packer'],
    ],
  ])('%s', (_name, got, expected) => {
    expect(got).toEqual(expected);
  });

  test('rejects a variable name packer would read as another flag', () => {
    expect(() => buildArgs('/t', { '-debug': 'x' })).toThrow(UserError);
    expect(() => buildArgs('/t', { 'a b': 'x' })).toThrow(/not valid/);
  });

  test.each<[string[], Record<string, string>]>([
    [['a=1', ' b = two '], { a: '1', b: 'two' }],
    [['url=http://x/?a=b'], { url: 'http://x/?a=b' }],
    [['empty='], { empty: '' }],
    [[], {}],
  ])('parseVarAssignments(%j)', (items, expected) => {
    expect(parseVarAssignments(items, 'packer-vars')).toEqual(expected);
  });

  test.each([['novalue'], ['=x']])('parseVarAssignments rejects %j', (item) => {
    expect(() => parseVarAssignments([item], 'packer-vars')).toThrow(/packer-vars: .* is not NAME=value/);
  });
});

describe('releases and checksums', () => {
  test.each([
    ['linux', 'x64', 'packer_1.13.1_linux_amd64.zip'],
    ['linux', 'arm64', 'packer_1.13.1_linux_arm64.zip'],
    ['darwin', 'arm64', 'packer_1.13.1_darwin_arm64.zip'],
    ['win32', 'x64', 'packer_1.13.1_windows_amd64.zip'],
  ])('%s/%s -> %s', (platform, arch, file) => {
    expect(releaseFileName(releaseFor('1.13.1', platform, arch))).toBe(file);
  });

  test('url, with a mirror base', () => {
    const r = releaseFor('1.6.6', 'linux', 'x64');
    expect(releaseUrl(r)).toBe('https://releases.hashicorp.com/packer/1.6.6/packer_1.6.6_linux_amd64.zip');
    expect(releaseUrl(r, 'http://127.0.0.1:9/m/')).toBe(
      'http://127.0.0.1:9/m/1.6.6/packer_1.6.6_linux_amd64.zip',
    );
  });

  test.each([
    ['1.13', 'linux', 'x64'],
    ['latest', 'linux', 'x64'],
    ['1.13.1', 'aix', 'x64'],
    ['1.13.1', 'linux', 'mips'],
  ])('releaseFor(%j, %s, %s) is a UserError', (v, p, a) => {
    expect(() => releaseFor(v, p, a)).toThrow(UserError);
  });

  const hex = 'ab'.repeat(32);
  test.each([
    [hex, hex],
    [hex.toUpperCase(), hex],
    [`sha256:${hex}`, hex],
    [`  ${hex}\n`, hex],
  ])('normalizeSha256(%j)', (given, expected) => {
    expect(normalizeSha256(given, 'packer-sha256')).toBe(expected);
  });

  test.each([['abc'], ['z'.repeat(64)], [''], ['ab'.repeat(33)]])('normalizeSha256 rejects %j', (given) => {
    expect(() => normalizeSha256(given, 'packer-sha256')).toThrow(/packer-sha256 must be a sha256/);
  });

  test('checksumFromSums picks the line of the file, and says so when it is not listed', () => {
    const sums = `${'cd'.repeat(32)}  packer_9.9.9_darwin_arm64.zip\n${hex.toUpperCase()}  packer_9.9.9_linux_amd64.zip\n`;
    expect(checksumFromSums(sums, 'packer_9.9.9_linux_amd64.zip')).toBe(hex);
    expect(checksumFromSums(sums, 'packer_9.9.9_darwin_arm64.zip')).toBe('cd'.repeat(32));
    expect(() => checksumFromSums(sums, 'packer_9.9.9_linux_arm64.zip')).toThrow(
      /lists no packer_9.9.9_linux_arm64.zip/,
    );
    expect(() => checksumFromSums('not a sums file', 'x.zip')).toThrow(/set packer-sha256/);
  });

  test('checksumMismatch', () => {
    expect(checksumMismatch('f.zip', hex, hex.toUpperCase())).toBeUndefined();
    expect(checksumMismatch('f.zip', hex, 'cd'.repeat(32))).toMatch(
      /checksum mismatch for f.zip: expected sha256 abab.*, got cdcd/,
    );
  });
});
