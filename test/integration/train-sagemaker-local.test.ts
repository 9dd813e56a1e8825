import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { FsObjectStore } from '../../src/adapters/local/fs-store';
import { LocalSageMaker } from '../../src/adapters/local/local-sagemaker';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { parseManifest } from '../../src/core/manifest';
import { leaseKey } from '../../src/core/lease';
import { acquireFolderLease } from '../../src/commands/folder-lease';
import { buildContext, findCommand, runCommand } from '../../src/runner';
import { STATE_TRAINING_JOB, trainOnSageMaker } from '../../src/commands/train-sagemaker';
import { TempRepo } from '../helpers/git-repo';
import { dataZip, MemoryLogger } from '../helpers/train-fixture';

const DEMO = path.resolve(__dirname, '../../examples/demo-repo');

function demoRepo(extraConfig = ''): TempRepo {
  const repo = new TempRepo('mp-sm-demo-');
  cpSync(DEMO, repo.dir, { recursive: true });
  if (extraConfig)
    repo.write(
      'search-config.toml',
      readFileSync(path.join(DEMO, 'search-config.toml'), 'utf8') + extraConfig,
    );
  repo.commit('demo');
  return repo;
}

async function run(
  cwd: string,
  command: string,
  inputs: Record<string, string>,
  logger = new MemoryLogger(),
) {
  const state = new MemoryState();
  const result = await runCommand({
    command,
    inputs: { backend: 'local', ...inputs },
    env: {},
    cwd,
    logger,
    state,
    signal: new AbortController().signal,
  });
  return { result, logger, state };
}

const SM = {
  'train-engine': 'sagemaker',
  'sagemaker-image': '123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1',
  'sagemaker-role': 'arn:aws:iam::123456789012:role/sm',
  'sagemaker-instance-type': 'ml.m5.large',
  'sagemaker-poll': '1s',
};

describe('the local run of the SageMaker training contract', () => {
  it('trains examples/demo-repo into a model folder that promote and fetch-model accept', async () => {
    const repo = demoRepo('\n[hyperparameters]\nepochs = 3\n');
    const store = new FsObjectStore(path.join(repo.dir, '.model-store'));
    await store.uploadFile('data/raw_source_data.zip', dataZip(9));
    const prefix = `1.0.0-${repo.head().slice(0, 7)}/`;

    repo.write('thresholds.json', JSON.stringify({ metrics: { top1: { better: 'higher', min: 80 } } }));
    const { result, logger } = await run(repo.dir, 'train', {
      ...SM,
      'data-key': 'data/raw_source_data.zip',
      'metrics-file': 'metrics.json',
      'thresholds-file': 'thresholds.json',
      'report-dir': 'test-results/mp',
      // the entry runs the command in <root>/code with SageMaker's variables: prove they are there
      'train-command':
        'test -f "$SM_CHANNEL_TRAINING/raw_source_data.zip" && test "$SM_HP_EPOCHS" = 3 && test "$MODEL_PIPELINE_OUTPUT_DIR" = "$SM_MODEL_DIR" && test -d "$SM_CHECKPOINT_DIR" && test ! -e .git && test ! -e .model-store && make train',
    });
    expect(result.outputs['model-prefix']).toBe(prefix);
    expect(result.outputs['instance-id']).toMatch(/^mp-1-0-0-[0-9a-f]{7}-[0-9a-f]{6}$/);
    expect(logger.lines.join('\n')).toMatch(/training job mp-\S+: InProgress \(Training\)/);
    expect(logger.lines.join('\n')).toMatch(/-> Completed/);
    // the data channel reached the training script: 9 rows of data.csv
    expect(logger.lines).toContainEqual(
      expect.stringMatching(/^trained on 36 bytes of data: model\.zip written to \S+\/model$/),
    );
    // same layout as EC2 training: model.zip, metrics, config, manifest with every file's sha256
    const names = readdirSync(path.join(repo.dir, '.model-store', prefix)).sort();
    expect(names).toEqual([
      'benchmark_results.xml',
      'manifest.json',
      'metrics.json',
      'model.zip',
      'search-config.toml',
    ]);
    const manifest = parseManifest(
      readFileSync(path.join(repo.dir, '.model-store', prefix, 'manifest.json'), 'utf8'),
      'manifest',
    );
    for (const f of manifest.files) {
      const bytes = readFileSync(path.join(repo.dir, '.model-store', prefix, f.name));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(f.sha256);
      expect(bytes.length).toBe(f.size);
      // what the store reported at upload, so promote compares it instead of reading the bytes again
      expect(f.stored?.versionId).toMatch(/^\d+\.\d+$/);
    }
    expect(manifest.build).toMatchObject({ backend: 'sagemaker', instanceType: '1xml.m5.large' });
    // the JUnit benchmark report, as EC2 training writes it: in the folder, the manifest and report-dir
    expect(manifest.benchmark).toEqual({
      passed: true,
      file: 'metrics.json',
      report: 'benchmark_results.xml',
    });
    expect(result.outputs['benchmark-passed']).toBe('true');
    const xml = readFileSync(path.join(repo.dir, '.model-store', prefix, 'benchmark_results.xml'), 'utf8');
    expect(xml).toMatch(/<testcase[^>]*name="top1"/);
    expect(xml).not.toMatch(/<failure/);
    expect(readFileSync(path.join(repo.dir, 'test-results/mp/benchmark_results.xml'), 'utf8')).toBe(xml);
    expect(manifest.inputs).toEqual([{ key: 'data/raw_source_data.zip', size: expect.any(Number) }]);

    const promoted = await run(repo.dir, 'promote', { 'model-prefix': prefix, environment: 'development' });
    expect(promoted.result.outputs['model-prefix']).toBe(prefix);
    const fetched = await run(repo.dir, 'fetch-model', { environment: 'development', dest: 'served' });
    expect(fetched.result.outputs['model-prefix']).toBe(prefix);
    expect(readdirSync(path.join(repo.dir, 'served')).sort()).toEqual(
      expect.arrayContaining(['weights.txt', 'config.toml']),
    );
  });

  it('a failing training command fails the job, and no model folder is left', async () => {
    const repo = demoRepo();
    const store = new FsObjectStore(path.join(repo.dir, '.model-store'));
    const prefix = `1.0.0-${repo.head().slice(0, 7)}/`;
    await expect(
      run(repo.dir, 'train', { ...SM, 'data-key': 'none', 'train-command': 'exit 3' }),
    ).rejects.toThrow(
      /training job mp-\S+ ended Failed: AlgorithmError: the entry exited with 3; no model was written/,
    );
    const left: string[] = [];
    for await (const o of store.list(prefix)) left.push(o.key);
    expect(left).toEqual([]);
  });

  it('takes the folder lease: a run while another trains the same model leaves its files alone', async () => {
    const repo = demoRepo();
    const store = new FsObjectStore(path.join(repo.dir, '.model-store'));
    const prefix = `1.0.0-${repo.head().slice(0, 7)}/`;
    // another run holds the lease and has uploaded one file so far
    const clock = { now: () => new Date(), sleep: () => new Promise<void>(() => undefined) };
    const other = await acquireFolderLease(store, clock, new MemoryLogger(), prefix, 'run-a');
    await store.put(`${prefix}model.zip`, 'the other run is uploading this');
    await expect(
      run(repo.dir, 'train', { ...SM, 'data-key': 'none', 'train-command': 'make train' }),
    ).rejects.toThrow(new RegExp(`^another run is training ${prefix.replace(/[./]/g, '\\$&')} \\(run run-a`));
    expect((await store.get(`${prefix}model.zip`))!.body.toString()).toBe('the other run is uploading this');
    expect(await store.head(leaseKey(prefix))).toBeDefined();
    await other.release();
    // once it is gone, the next run takes the lease, replaces the leftovers and releases the lease
    const { result } = await run(repo.dir, 'train', {
      ...SM,
      'data-key': 'none',
      'train-command': 'make train',
    });
    expect(result.outputs['model-prefix']).toBe(prefix);
    expect(await store.head(leaseKey(prefix))).toBeUndefined();
  });

  it('follows the resolution rule: a commit whose model inputs are unchanged reuses the stored model', async () => {
    const repo = demoRepo();
    const store = new FsObjectStore(path.join(repo.dir, '.model-store'));
    const first = `1.0.0-${repo.head().slice(0, 7)}/`;
    await run(repo.dir, 'train', { ...SM, 'data-key': 'none', 'train-command': 'make train' });
    repo.write('README.md', 'docs only\n');
    repo.commit('docs');
    await expect(
      run(repo.dir, 'train', { ...SM, 'data-key': 'none', 'train-command': 'make train' }),
    ).rejects.toThrow(
      new RegExp(`^${first.replace(/[./]/g, '\\$&')} is already the model of this commit \\(ancestor`),
    );
    const own = `1.0.0-${repo.head().slice(0, 7)}/`;
    expect(await store.head(`${own}manifest.json`)).toBeUndefined();
  });

  it('refuses a config with steps in one line, before any job or upload (steps run on the instance engine)', async () => {
    const repo = demoRepo('\n[[steps]]\nname = "train"\ncommand = "make train"\n');
    const store = new FsObjectStore(path.join(repo.dir, '.model-store'));
    await expect(run(repo.dir, 'train', { ...SM, 'data-key': 'none' })).rejects.toThrow(
      /^search-config\.toml defines steps, which run on the instance engine \(EC2 or local\); the SageMaker engine runs one train-command/,
    );
    const left: string[] = [];
    for await (const o of store.list('')) left.push(o.key);
    expect(left).toEqual([]);
  });

  it('a cancelled run stops its job (the local run kills the entry process)', async () => {
    const repo = demoRepo();
    const store = new FsObjectStore(path.join(repo.dir, '.model-store'));
    const controller = new AbortController();
    const logger = new MemoryLogger();
    const state = new MemoryState();
    const cmd = findCommand('train');
    const ctx = await buildContext(cmd, {
      command: 'train',
      inputs: { backend: 'local', ...SM, 'data-key': 'none', 'train-command': 'echo started; sleep 60' },
      env: {},
      cwd: repo.dir,
      logger,
      state,
      signal: controller.signal,
    });
    const sm = new LocalSageMaker(store, { onOutput: (l) => logger.info(l) });
    const running = trainOnSageMaker(ctx, sm).catch((e: unknown) => e);
    const deadline = Date.now() + 20_000;
    while (!logger.lines.includes('started') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    controller.abort(new Error('SIGTERM'));
    const err = await running;
    expect(String(err)).toMatch(
      /train interrupted \(SIGTERM\): training job mp-\S+ stopped; no model was written/,
    );
    const job = state.get(STATE_TRAINING_JOB);
    expect((await sm.describeTrainingJob(job))?.status).toBe('Stopped');
  });
});
