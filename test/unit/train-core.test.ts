import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { UserError } from '../../src/core/errors';
import { excludeMatcher } from '../../src/core/excludes';
import { parseManifest } from '../../src/core/manifest';
import {
  benchmarkVerdict,
  buildTrainManifest,
  checkRelativePath,
  durationSeconds,
  ephemeralKeyName,
  existingFilesCommand,
  instanceFetchCommand,
  instanceUploadCommand,
  MISSING_EXIT,
  parseExistingFiles,
  parseFileReports,
  planTrainSteps,
  trainArtifacts,
  trainCommandLine,
  type ManifestInput,
} from '../../src/core/train';

const SHA = 'a'.repeat(64);

describe('trainArtifacts', () => {
  it.each([
    [
      { outputDir: '.', metricsFile: 'metrics.json' },
      [
        ['model.zip', 'model.zip', true],
        ['embeddings.zip', 'embeddings.zip', false],
        ['metrics.json', 'metrics.json', false],
      ],
    ],
    [
      { outputDir: 'out/', metricsFile: 'out/bench/results.json' },
      [
        ['model.zip', 'out/model.zip', true],
        ['embeddings.zip', 'out/embeddings.zip', false],
        ['results.json', 'out/bench/results.json', false],
      ],
    ],
    [
      { outputDir: 'out', metricsFile: '' },
      [
        ['model.zip', 'out/model.zip', true],
        ['embeddings.zip', 'out/embeddings.zip', false],
      ],
    ],
  ])('%j', (input, expected) => {
    expect(trainArtifacts(input).map((a) => [a.name, a.remotePath, a.required])).toEqual(expected);
  });

  it('refuses a metrics file that would replace the model or the manifest', () => {
    expect(() => trainArtifacts({ outputDir: '.', metricsFile: 'manifest.json' })).toThrow(UserError);
    expect(() => trainArtifacts({ outputDir: '.', metricsFile: 'x/model.zip' })).toThrow(
      /overwrite model\.zip/,
    );
  });
});

describe('checkRelativePath', () => {
  it.each(['.', 'out', 'a/b-c_d.1'])('accepts %j', (p) => expect(checkRelativePath(p, 'x')).toBe(p));
  it.each(['', '../up', 'a/../b', 'sp ace', 'a;b', '$HOME'])('rejects %j', (p) => {
    expect(() => checkRelativePath(p, 'output-dir')).toThrow(/output-dir/);
  });
  it('takes absolute paths only when allowed', () => {
    expect(() => checkRelativePath('/tmp/x', 'remote-dir')).toThrow(/relative/);
    expect(checkRelativePath('/tmp/x', 'remote-dir', true)).toBe('/tmp/x');
  });
});

describe('trainCommandLine', () => {
  it('changes into the repository, exports quoted variables, then runs the command', () => {
    expect(
      trainCommandLine({
        repoDir: 'model-pipeline',
        command: 'make train',
        env: { MODEL_PIPELINE_CONFIG: 'search config.toml', MODEL_PIPELINE_DATA: '', 'bad-name': 'x' },
      }),
    ).toBe(
      "cd model-pipeline && export MODEL_PIPELINE_CONFIG='search config.toml' && export MODEL_PIPELINE_DATA='' && make train",
    );
  });
});

describe('planTrainSteps', () => {
  it('has a data step only with a data key and always ends by terminating', () => {
    const withData = planTrainSteps({ dataKey: 'raw_source_data.zip', backend: 'aws' }).map((s) => s.id);
    expect(withData).toEqual([
      'check-store',
      'launch',
      'wait-running',
      'wait-ssh',
      'push-code',
      'push-data',
      'train',
      'collect',
      'manifest',
      'terminate',
    ]);
    expect(planTrainSteps({ backend: 'local' }).map((s) => s.id)).not.toContain('push-data');
    // manifest strictly after the uploads
    expect(withData.indexOf('manifest')).toBeGreaterThan(withData.indexOf('collect'));
  });
});

describe('ephemeralKeyName', () => {
  it('is unique per run and made of allowed characters', () => {
    expect(ephemeralKeyName('1.2.3-abcdef0', 'beef')).toBe('model-pipeline-1.2.3-abcdef0-beef');
    expect(ephemeralKeyName('a b/c', '01')).toBe('model-pipeline-a-b-c-01');
    expect(ephemeralKeyName('x'.repeat(400), 'ff').length).toBeLessThanOrEqual(255);
  });
});

describe('buildTrainManifest', () => {
  const input: ManifestInput = {
    model: { name: 'search', version: '1.2.3', sha: 'b'.repeat(40) },
    files: [
      { name: 'search-config.toml', size: 10, sha256: SHA },
      { name: 'model.zip', size: 100, sha256: SHA },
    ],
    config: { path: 'search-config.toml', sha256: SHA },
    inputs: [{ key: 'raw_source_data.zip', sha256: SHA, size: 5 }],
    git: { sha: 'b'.repeat(40), branch: 'main', repository: undefined },
    build: {
      backend: 'aws',
      ami: 'ami-1',
      instanceType: 'g5.xlarge',
      instanceId: 'i-1',
      startedAt: new Date('2026-01-01T00:00:00Z'),
      finishedAt: new Date('2026-01-01T01:00:00Z'),
      runUrl: undefined,
      actor: 'me',
    },
    metrics: { file: 'metrics.json', text: '{"passed": false, "top1": 0.5}' },
  };

  it('builds a manifest readers accept, files sorted, no undefined fields', () => {
    const m = buildTrainManifest(input);
    const roundTrip = parseManifest(JSON.stringify(m), 'x');
    expect(roundTrip.files.map((f) => f.name)).toEqual(['model.zip', 'search-config.toml']);
    expect(m.build).toEqual({
      backend: 'aws',
      ami: 'ami-1',
      instanceType: 'g5.xlarge',
      instanceId: 'i-1',
      startedAt: '2026-01-01T00:00:00.000Z',
      finishedAt: '2026-01-01T01:00:00.000Z',
      actor: 'me',
    });
    expect(m.git).toEqual({ sha: 'b'.repeat(40), branch: 'main' });
    expect(m.benchmark).toEqual({ passed: false, file: 'metrics.json' });
  });

  it('claims no benchmark verdict the metrics do not state', () => {
    expect(
      buildTrainManifest({ ...input, metrics: { file: 'm.json', text: '{"top1": 1}' } }).benchmark,
    ).toBeUndefined();
    expect(benchmarkVerdict('not json')).toBeUndefined();
    expect(benchmarkVerdict('{"passed": true}')).toBe(true);
  });

  it('refuses a manifest without model.zip or with a file twice', () => {
    expect(() => buildTrainManifest({ ...input, files: [input.files[0]] })).toThrow(/without model\.zip/);
    expect(() => buildTrainManifest({ ...input, files: [input.files[1], input.files[1]] })).toThrow(/twice/);
  });
});

describe('durationSeconds', () => {
  it('rounds and never goes negative', () => {
    expect(durationSeconds(new Date(0), new Date(1499))).toBe(1);
    expect(durationSeconds(new Date(5000), new Date(0))).toBe(0);
  });
});

describe('excludeMatcher (rsync-style)', () => {
  const m = excludeMatcher(['.git', 'node_modules', '/.model-store', '*.pyc', 'build/', 'data/**/tmp']);
  it.each([
    ['.git', true, true],
    ['sub/.git', true, true],
    ['node_modules/x/index.js', false, false], // the folder itself is excluded, so rsync never descends
    ['sub/node_modules', true, true],
    ['.model-store', true, true],
    ['sub/.model-store', true, false],
    ['a/b/c.pyc', false, true],
    ['build', true, true],
    ['build', false, false],
    ['data/x/y/tmp', true, true],
    ['src/train.py', false, false],
  ])('%s (dir=%s) excluded: %s', (p, isDir, expected) => {
    expect(m(p, isDir)).toBe(expected);
  });
});

describe('instance-side transfers', () => {
  it('fetches with the aws CLI, then reports hash and size', () => {
    expect(
      instanceFetchCommand({
        aws: 'aws',
        uri: 's3://b/raw_source_data.zip',
        dest: 'repo/raw_source_data.zip',
      }),
    ).toBe(
      'aws s3 cp --only-show-errors s3://b/raw_source_data.zip repo/raw_source_data.zip && printf \'MP-FILE %s %s %s\\n\' "$(sha256sum < repo/raw_source_data.zip | cut -d\' \' -f1)" "$(stat -c %s repo/raw_source_data.zip)" raw_source_data.zip',
    );
  });

  it('uploads only files that exist, with the endpoint when one is set', () => {
    const cmd = instanceUploadCommand({
      aws: 'aws --profile t',
      file: 'my repo/model.zip',
      name: 'model.zip',
      uri: 's3://b/m/1.0.0-abcdef0/model.zip',
      endpoint: 'http://127.0.0.1:5000',
    });
    expect(cmd.startsWith(`{ test -f 'my repo/model.zip' || exit ${MISSING_EXIT}; } && printf`)).toBe(true);
    expect(
      cmd.endsWith(
        "aws --profile t s3 cp --only-show-errors --endpoint-url http://127.0.0.1:5000 'my repo/model.zip' s3://b/m/1.0.0-abcdef0/model.zip",
      ),
    ).toBe(true);
  });

  it('parses the report lines and ignores everything else', () => {
    const r = parseFileReports([
      `MP-FILE ${SHA} 123 model.zip`,
      'upload: ./x to s3://y',
      `MP-FILE ${SHA} x bad`,
    ]);
    expect([...r]).toEqual([['model.zip', { sha256: SHA, size: 123 }]]);
  });
});

describe('existingFilesCommand', () => {
  it('reports the size of each file that exists, and nothing for a missing one or a folder, in one command', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-existing-'));
    try {
      mkdirSync(path.join(dir, 'my repo', 'out', 'embeddings.zip'), { recursive: true }); // a folder, not a file
      writeFileSync(path.join(dir, 'my repo', 'out', 'model.zip'), 'weights');
      writeFileSync(path.join(dir, 'my repo', 'out', 'empty.json'), '');
      const paths = [
        'my repo/out/model.zip',
        'my repo/out/embeddings.zip',
        'my repo/out/metrics.json',
        'my repo/out/empty.json',
      ];
      const out = execFileSync('bash', ['-c', existingFilesCommand(paths)], { cwd: dir, encoding: 'utf8' });
      expect([...parseExistingFiles(out.split('\n'))]).toEqual([
        ['my repo/out/model.zip', 7],
        ['my repo/out/empty.json', 0],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('quotes every path and succeeds on an empty list', () => {
    expect(existingFilesCommand(['a b/model.zip', 'x.zip'])).toContain("for f in 'a b/model.zip' x.zip; do");
    expect(existingFilesCommand([])).toBe('true');
  });

  it('parses only its own lines', () => {
    expect([
      ...parseExistingFiles([
        'MP-HAVE 12 repo/model.zip',
        'motd text',
        'MP-HAVE x bad',
        '  MP-HAVE 0 e.json  ',
      ]),
    ]).toEqual([
      ['repo/model.zip', 12],
      ['e.json', 0],
    ]);
  });
});
