import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FsObjectStore } from '../../src/adapters/local/fs-store';
import { LocalCompute } from '../../src/adapters/local/local-compute';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { cli } from '../../src/cli/main';
import { exitCodeOf, PipelineError } from '../../src/core/errors';
import { compareStored } from '../../src/core/gates';
import { parseManifest } from '../../src/core/manifest';
import { runCommand } from '../../src/runner';
import { dataZip, keysUnder, MemoryLogger, trainingRepo } from '../helpers/train-fixture';
import { alive } from '../helpers/process';

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

async function eventually(check: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

async function setup() {
  const repo = trainingRepo('1.0.0');
  const store = new FsObjectStore(path.join(repo.dir, '.model-store'));
  await store.uploadFile('raw_source_data.zip', dataZip(7));
  const prefix = `search/1.0.0-${repo.head().slice(0, 7)}/`;
  return { repo, store, prefix };
}

async function train(
  cwd: string,
  inputs: Record<string, string> = {},
  signal?: AbortSignal,
  logger = new MemoryLogger(),
) {
  const state = new MemoryState();
  try {
    const result = await runCommand({
      command: 'train',
      inputs: { backend: 'local', ...inputs },
      env: {},
      cwd,
      logger,
      state,
      signal: signal ?? new AbortController().signal,
    });
    return { result, logger, state };
  } catch (error) {
    return { error, logger, state };
  }
}

describe('train on the local backend', () => {
  it('runs the training command in a local working copy and lands a complete model with its manifest', async () => {
    const { repo, store, prefix } = await setup();
    // the copy leaves out the local store, .git and node_modules, or the command fails
    const { result, error, logger, state } = await train(repo.dir, {
      'train-command': 'test ! -e .model-store && test ! -e .git && test ! -e node_modules && make train',
    });
    expect(error).toBeUndefined();
    expect(result!.outputs['model-prefix']).toBe(prefix);
    expect(result!.outputs['model-uri']).toBe(store.uri(prefix));
    expect(result!.outputs['instance-id']).toMatch(/^local-[0-9a-f]{12}$/);
    expect(Number(result!.outputs['duration-seconds'])).toBeGreaterThanOrEqual(0);
    expect(state.get('instance-id')).toBe(result!.outputs['instance-id']);
    // output was streamed line by line
    expect(logger.lines).toEqual(expect.arrayContaining(['epoch 1/3 rows=7', 'epoch 3/3 rows=7']));

    expect(await keysUnder(store, prefix)).toEqual([
      'benchmark_results.xml',
      'manifest.json',
      'metrics.json',
      'model.zip',
      'search-config.toml',
    ]);
    const manifest = parseManifest((await store.get(prefix + 'manifest.json'))!.body.toString(), 'manifest');
    const modelFile = path.join(store.root, ...prefix.split('/'), 'model.zip');
    expect(manifest.files.find((f) => f.name === 'model.zip')).toMatchObject({
      name: 'model.zip',
      size: readFileSync(modelFile).length,
      sha256: sha256(modelFile),
    });
    const recorded = manifest.files.find((f) => f.name === 'model.zip')!;
    // what the store reported at upload, so promote can check it with a HEAD
    expect(recorded.stored).toBeDefined();
    expect(
      compareStored(
        'model.zip',
        { ...recorded.stored, size: recorded.size },
        await store.stat(prefix + 'model.zip'),
      ),
    ).toEqual({ verdict: 'same' });
    expect(manifest.model).toEqual({ name: 'search', version: '1.0.0', sha: repo.head() });
    expect(manifest.git?.sha).toBe(repo.head());
    expect(manifest.git?.branch).toBe('main');
    expect(manifest.build?.backend).toBe('local');
    // no thresholds file: the report records the metrics, and the file's own "passed": true stands
    // the metrics file is the data (recorded in the manifest), the JUnit file a report made from it
    expect(manifest.benchmark).toEqual({
      passed: true,
      file: 'metrics.json',
      report: 'benchmark_results.xml',
    });
    expect(manifest.metrics).toEqual({ file: 'metrics.json', values: { accuracy: 0.93, rows: 7 } });
    expect(manifest.inputs?.[0]).toMatchObject({
      key: 'raw_source_data.zip',
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(manifest.config?.sha256).toBe(sha256(path.join(repo.dir, 'search-config.toml')));

    expect(existsSync(new LocalCompute().dirOf(result!.outputs['instance-id']))).toBe(false);

    // a complete model is never overwritten
    const again = await train(repo.dir);
    expect(again.error).toBeInstanceOf(PipelineError);
    expect((again.error as Error).message).toMatch(/already complete .*refusing to overwrite/);
    expect(again.state.get('instance-id')).toBe('');
  });

  it('fails with exit 1, writes no manifest and removes the work folder when training fails', async () => {
    const { repo, store, prefix } = await setup();
    const { error, state } = await train(repo.dir, { 'train-command': 'TRAIN_FAIL=1 make train' });
    expect(exitCodeOf(error)).toBe(1);
    expect((error as Error).message).toMatch(
      /training command "TRAIN_FAIL=1 make train" failed with exit code 2/,
    );
    expect(await keysUnder(store, prefix)).toEqual([]);
    const id = state.get('instance-id');
    expect(id).toMatch(/^local-/);
    expect(existsSync(new LocalCompute().dirOf(id))).toBe(false);
  });

  it('fails when the training command leaves no model.zip, and removes what it uploaded', async () => {
    const { repo, store, prefix } = await setup();
    const { error } = await train(repo.dir, { 'train-command': 'echo \'{"passed":true}\' > metrics.json' });
    expect((error as Error).message).toMatch(/left no model\.zip/);
    expect(await keysUnder(store, prefix)).toEqual([]);
  });

  it('refuses to start without the training data, before creating anything', async () => {
    const { repo } = await setup();
    const { error, state } = await train(repo.dir, { 'data-key': 'inputs/missing.zip' });
    expect(exitCodeOf(error)).toBe(2);
    expect((error as Error).message).toMatch(/inputs\/missing\.zip is not in the store/);
    expect(state.get('instance-id')).toBe('');
  });

  it('stops the training process and removes the work folder when aborted mid-run', async () => {
    const { repo, store, prefix } = await setup();
    const pidFile = path.join(mkdtempSync(path.join(tmpdir(), 'mp-pid-')), 'pid');
    const controller = new AbortController();
    const logger = new MemoryLogger();
    logger.onLine = (line) => {
      if (line === 'training-started') controller.abort(new Error('received SIGINT'));
    };
    const { error, state } = await train(
      repo.dir,
      { 'train-command': `make slow PID_FILE=${pidFile}` },
      controller.signal,
      logger,
    );
    expect((error as Error).message).toMatch(/train interrupted \(received SIGINT\).*no model was written/);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(await eventually(() => !alive(pid))).toBe(true);
    expect(existsSync(new LocalCompute().dirOf(state.get('instance-id')))).toBe(false);
    expect(await keysUnder(store, prefix)).toEqual([]);
  });

  it('works from the CLI: model-pipeline train --local --json', async () => {
    const { repo, prefix } = await setup();
    const out: string[] = [];
    const err: string[] = [];
    const code = await cli(['train', '--local', '--json'], {
      stdout: (t) => out.push(t),
      stderr: (t) => err.push(t),
      env: {},
      cwd: repo.dir,
    });
    expect(err.join('\n')).toMatch(/epoch 3\/3/);
    expect(code).toBe(0);
    const parsed = JSON.parse(out.join('')) as { outputs: Record<string, string> };
    expect(parsed.outputs['model-prefix']).toBe(prefix);
  });
});

describe('train writes the benchmark report into the model', () => {
  it('stores benchmark_results.xml and records a failed threshold in the manifest', async () => {
    const { repo, store, prefix } = await setup();
    // the fixture's metrics.json has accuracy 0.93: a floor of 0.95 fails it
    repo.write('thresholds.json', JSON.stringify({ metrics: { accuracy: { better: 'higher', min: 0.95 } } }));
    const { result, error, logger } = await train(repo.dir, { 'thresholds-file': 'thresholds.json' });
    expect(error).toBeUndefined();
    expect(result?.outputs['benchmark-passed']).toBe('false');
    const manifest = parseManifest((await store.get(prefix + 'manifest.json'))!.body.toString(), 'manifest');
    expect(manifest.benchmark).toEqual({
      passed: false,
      file: 'metrics.json',
      report: 'benchmark_results.xml',
    });
    const xml = (await store.get(prefix + 'benchmark_results.xml'))!.body.toString();
    expect(xml).toMatch(/<testcase[^>]*name="accuracy"/);
    expect(xml).toMatch(/<failure/);
    const entry = manifest.files.find((f) => f.name === 'benchmark_results.xml');
    expect(entry?.sha256).toBe(createHash('sha256').update(xml).digest('hex'));
    expect(logger.text()).toMatch(/error: .*accuracy/);
  });

  it('passes when the metrics meet the thresholds', async () => {
    const { repo, store, prefix } = await setup();
    repo.write('thresholds.json', JSON.stringify({ metrics: { accuracy: { better: 'higher', min: 0.9 } } }));
    const { result, error } = await train(repo.dir, {
      'thresholds-file': 'thresholds.json',
      'report-dir': 'test-results/mp',
    });
    expect(error).toBeUndefined();
    expect(result?.outputs['benchmark-passed']).toBe('true');
    // the copy for CI test reports is the stored report
    expect(readFileSync(path.join(repo.dir, 'test-results/mp/benchmark_results.xml'), 'utf8')).toBe(
      (await store.get(prefix + 'benchmark_results.xml'))!.body.toString(),
    );
    const manifest = parseManifest((await store.get(prefix + 'manifest.json'))!.body.toString(), 'manifest');
    expect(manifest.benchmark?.passed).toBe(true);
    expect((await store.get(prefix + 'benchmark_results.xml'))!.body.toString()).not.toMatch(/<failure/);
  });
});

describe('the next model after one reached production (defect 2)', () => {
  it('trains with default settings and is compared against production by its recorded metrics', async () => {
    const { repo, store, prefix } = await setup();
    const first = await train(repo.dir);
    expect(first.error).toBeUndefined();
    for (const environment of ['development', 'staging', 'production']) {
      await runCommand({
        command: 'promote',
        inputs: { backend: 'local', 'model-prefix': prefix, environment },
        env: {},
        cwd: repo.dir,
        logger: new MemoryLogger(),
        state: new MemoryState(),
        signal: new AbortController().signal,
      });
    }
    repo.write(
      'search-config.toml',
      readFileSync(path.join(repo.dir, 'search-config.toml'), 'utf8').replace('1.0.0', '1.1.0'),
    );
    const next = `search/1.1.0-${repo.commit('bump').slice(0, 7)}/`;
    repo.write(
      'thresholds.json',
      JSON.stringify({ metrics: { accuracy: { better: 'higher', fail: 0.01 } } }),
    );
    const second = await train(repo.dir, { 'thresholds-file': 'thresholds.json' });
    expect(second.error).toBeUndefined();
    expect(second.result?.outputs['model-prefix']).toBe(next);
    expect(second.result?.outputs['benchmark-passed']).toBe('true');
    const xml = (await store.get(next + 'benchmark_results.xml'))!.body.toString();
    // the comparison names production's model and its value
    expect(xml).toContain(prefix);
    expect(xml).toMatch(/name="current" value="0\.93"/);
  });
});

describe('model-sources', () => {
  it('train records the git object hash of each model-sources path in the manifest', async () => {
    const { repo, store, prefix } = await setup();
    const { error } = await train(repo.dir, { 'model-sources': 'scripts/,Makefile' });
    expect(error).toBeUndefined();
    const manifest = parseManifest((await store.get(prefix + 'manifest.json'))!.body.toString(), 'manifest');
    expect(manifest.sources).toEqual({
      scripts: repo.git('rev-parse', 'HEAD:scripts'),
      Makefile: repo.git('rev-parse', 'HEAD:Makefile'),
    });
  });
});

describe('train settings that default to a file can be turned off with none', () => {
  it('data-key none trains without input data, metrics-file none stores no metrics or report', async () => {
    const repo = trainingRepo('1.0.0');
    const store = new FsObjectStore(path.join(repo.dir, '.model-store'));
    const prefix = `search/1.0.0-${repo.head().slice(0, 7)}/`;
    // no raw_source_data.zip in the store: the default data-key would fail before training
    const { result, error } = await train(repo.dir, {
      'data-key': 'none',
      'metrics-file': 'none',
      'train-command': 'printf weights > w.txt && zip -q model.zip w.txt',
    });
    expect(error).toBeUndefined();
    expect(result?.outputs['benchmark-passed']).toBe('');
    expect(await keysUnder(store, prefix)).toEqual(['manifest.json', 'model.zip', 'search-config.toml']);
    const manifest = parseManifest((await store.get(prefix + 'manifest.json'))!.body.toString(), 'manifest');
    expect(manifest.inputs).toBeUndefined();
    expect(manifest.benchmark).toBeUndefined();
  });
});
