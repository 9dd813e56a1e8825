import { cpSync } from 'node:fs';
import * as path from 'node:path';
import { FsObjectStore } from '../../src/adapters/local/fs-store';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { deploy, endpointStatus, undeploy } from '../../src/commands/deploy';
import {
  STATE_TRAINING_JOB,
  stopLeftoverJob,
  trainOnSageMaker,
  waitForTrainingJob,
} from '../../src/commands/train-sagemaker';
import { leaseKey } from '../../src/core/lease';
import type { CommandContext } from '../../src/commands/types';
import { buildContext, findCommand, runCommand } from '../../src/runner';
import { FakeSageMaker } from '../helpers/fake-sagemaker';
import { TempRepo } from '../helpers/git-repo';
import { MemoryLogger } from '../helpers/train-fixture';

/*
 * moto 5.2.1 implements neither UpdateEndpoint nor StopTrainingJob, and its jobs and endpoints never sit in
 * a moving state: these paths run against FakeSageMaker (test/helpers/fake-sagemaker.ts), a fake of the port.
 */

const DEMO = path.resolve(__dirname, '../../examples/demo-repo');
const DEPLOY = {
  'serving-image': '123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1',
  'sagemaker-role': 'arn:aws:iam::123456789012:role/sm',
  'sagemaker-poll': '1s',
};

async function ctxFor(cwd: string, command: string, inputs: Record<string, string>, signal?: AbortSignal) {
  const logger = new MemoryLogger();
  const state = new MemoryState();
  const ctx = await buildContext(findCommand(command), {
    command,
    inputs: { backend: 'local', ...inputs },
    env: {},
    cwd,
    logger,
    state,
    signal: signal ?? new AbortController().signal,
  });
  // the fake answers at once: no real sleeping between polls
  const fast: CommandContext = {
    ...ctx,
    deps: { ...ctx.deps, clock: { now: () => new Date(), sleep: async () => {} } },
  };
  return { ctx: fast, logger, state };
}

/** examples/demo-repo trained (local run of the SageMaker contract) and promoted to staging. */
async function promotedRepo(): Promise<{ repo: TempRepo; prefix: string; store: FsObjectStore }> {
  const repo = new TempRepo('mp-deploy-');
  cpSync(DEMO, repo.dir, { recursive: true });
  repo.commit('demo');
  const prefix = `1.0.0-${repo.head().slice(0, 7)}/`;
  const base = {
    command: '',
    env: {},
    cwd: repo.dir,
    logger: new MemoryLogger(),
    state: new MemoryState(),
    signal: new AbortController().signal,
  };
  await runCommand({ ...base, command: 'train', inputs: { backend: 'local', 'data-key': 'none' } });
  await runCommand({
    ...base,
    command: 'promote',
    inputs: { backend: 'local', 'model-prefix': prefix, environment: 'development' },
  });
  await runCommand({
    ...base,
    command: 'promote',
    inputs: { backend: 'local', 'model-prefix': prefix, environment: 'staging' },
  });
  return { repo, prefix, store: new FsObjectStore(path.join(repo.dir, '.model-store')) };
}

describe('deploy on a fake SageMaker (update and rollback: moto has no UpdateEndpoint)', () => {
  it('creates, then updates the endpoint and removes the replaced config; a failed update rolls back', async () => {
    const { repo, prefix, store } = await promotedRepo();
    const sm = new FakeSageMaker();

    const first = await ctxFor(repo.dir, 'deploy', { ...DEPLOY, environment: 'staging' });
    const r1 = await deploy(first.ctx, sm);
    expect(r1.outputs['endpoint-name']).toBe('model-staging');
    expect(r1.outputs['model-prefix']).toBe(prefix);
    const config1 = r1.outputs['endpoint-config'];
    expect(sm.models.get(config1)!.PrimaryContainer.Environment.MODEL_PIPELINE_MODEL_URI).toBe(
      store.uri(prefix),
    );
    expect(first.logger.lines).toEqual(
      expect.arrayContaining(['endpoint model-staging: Creating', 'endpoint model-staging: InService']),
    );
    const record = JSON.parse(
      (await store.get(r1.outputs['deployment-record'].replace(store.uri(''), '')))!.body.toString(),
    );
    expect(record).toMatchObject({
      environment: 'staging',
      prefix,
      endpoint: 'model-staging',
      endpointConfig: config1,
    });

    // the second deploy updates (a later stamp names a new config) and drops the replaced config and model
    await new Promise((r) => setTimeout(r, 1100));
    const second = await ctxFor(repo.dir, 'deploy', { ...DEPLOY, environment: 'staging' });
    const r2 = await deploy(second.ctx, sm);
    const config2 = r2.outputs['endpoint-config'];
    expect(config2).not.toBe(config1);
    expect(sm.calls).toEqual(
      expect.arrayContaining([`updateEndpoint model-staging ${config2}`, `deleteEndpointConfig ${config1}`]),
    );
    expect([...sm.configs.keys()]).toEqual([config2]);

    // a failing update: the endpoint is put back on the previous config, the new config and model removed
    await new Promise((r) => setTimeout(r, 1100));
    sm.failNextUpdate = true;
    const third = await ctxFor(repo.dir, 'deploy', { ...DEPLOY, environment: 'staging' });
    await expect(deploy(third.ctx, sm)).rejects.toThrow(
      `failed: the new production variant failed its health checks; rolled back to ${config2}, which serves again`,
    );
    const e = await sm.describeEndpoint('model-staging');
    expect(e).toMatchObject({ status: 'InService', configName: config2 });
    expect([...sm.configs.keys()]).toEqual([config2]);
    expect([...sm.models.keys()]).toEqual([config2]);
    expect(sm.calls.slice(-4)).toEqual([
      expect.stringMatching(/^updateEndpoint model-staging model-staging-1-0-0-/),
      `updateEndpoint model-staging ${config2}`,
      expect.stringMatching(/^deleteEndpointConfig /),
      expect.stringMatching(/^deleteModel /),
    ]);

    const status = await ctxFor(repo.dir, 'endpoint-status', { environment: 'staging' });
    expect((await endpointStatus(status.ctx, sm)).outputs).toEqual({
      'endpoint-name': 'model-staging',
      'endpoint-status': 'InService',
      'endpoint-config': config2,
    });
    const gone = await ctxFor(repo.dir, 'undeploy', { environment: 'staging' });
    await undeploy(gone.ctx, sm);
    expect(sm.endpoints.size).toBe(0);
    expect(sm.configs.size).toBe(0);
    expect(sm.models.size).toBe(0);
  });
});

describe('training job polling and stopping (moto has no StopTrainingJob)', () => {
  it('logs each status transition and stops the job when the run is cancelled', async () => {
    const repo = new TempRepo('mp-sm-poll-');
    cpSync(DEMO, repo.dir, { recursive: true });
    repo.commit('demo');
    const sm = new FakeSageMaker([
      { status: 'InProgress', secondaryStatus: 'Starting' },
      { status: 'InProgress', secondaryStatus: 'Downloading' },
      { status: 'InProgress', secondaryStatus: 'Training' },
    ]);
    await sm.createTrainingJob({ TrainingJobName: 'job-1' } as never);
    const controller = new AbortController();
    const { ctx, logger } = await ctxFor(repo.dir, 'train', {}, controller.signal);
    let polls = 0;
    const counting: CommandContext = {
      ...ctx,
      deps: {
        ...ctx.deps,
        clock: {
          now: () => new Date(),
          sleep: async () => {
            if (++polls === 4) controller.abort(new Error('SIGINT'));
          },
        },
      },
    };
    await expect(waitForTrainingJob(counting, sm, 'job-1', 1)).rejects.toThrow(
      'train interrupted (SIGINT): training job job-1 stopped; no model was written',
    );
    expect(logger.lines.filter((l) => l.startsWith('training job'))).toEqual([
      'training job job-1: InProgress (Starting)',
      'training job job-1: Starting -> InProgress (Downloading)',
      'training job job-1: Downloading -> InProgress (Training)',
    ]);
    expect(sm.calls).toEqual(['createTrainingJob job-1', 'stopTrainingJob job-1']);
  });

  it('the post step stops a job a crashed run left InProgress, and leaves a finished one alone', async () => {
    const repo = new TempRepo('mp-sm-post-');
    cpSync(DEMO, repo.dir, { recursive: true });
    repo.commit('demo');
    const sm = new FakeSageMaker();
    await sm.createTrainingJob({ TrainingJobName: 'job-2' } as never);
    const { ctx, state } = await ctxFor(repo.dir, 'train', {});
    expect(await stopLeftoverJob(ctx, sm)).toBeUndefined(); // nothing saved: nothing to do
    state.save(STATE_TRAINING_JOB, 'job-2');
    expect(await stopLeftoverJob(ctx, sm)).toBe('job-2');
    expect(await stopLeftoverJob(ctx, sm)).toBeUndefined(); // Stopped now
    expect(sm.calls.filter((c) => c.startsWith('stop'))).toEqual(['stopTrainingJob job-2']);
  });

  it('SIGTERM while the job trains: train stops the job, writes no model, releases the lease', async () => {
    const repo = new TempRepo('mp-sm-term-');
    cpSync(DEMO, repo.dir, { recursive: true });
    repo.commit('demo');
    const sm = new FakeSageMaker();
    const controller = new AbortController();
    const { ctx, state, logger } = await ctxFor(
      repo.dir,
      'train',
      {
        'train-engine': 'sagemaker',
        'sagemaker-image': DEPLOY['serving-image'],
        'sagemaker-role': DEPLOY['sagemaker-role'],
        'data-key': 'none',
      },
      controller.signal,
    );
    let polls = 0;
    const term: CommandContext = {
      ...ctx,
      deps: {
        ...ctx.deps,
        clock: {
          now: () => new Date(),
          sleep: async () => {
            if (++polls === 2) controller.abort(new Error('SIGTERM'));
          },
        },
      },
    };
    await expect(trainOnSageMaker(term, sm)).rejects.toThrow(
      /^train interrupted \(SIGTERM\): training job mp-\S+ stopped/,
    );
    const job = [...sm.jobs.keys()][0];
    expect(sm.calls).toEqual([`createTrainingJob ${job}`, `stopTrainingJob ${job}`]);
    // the post step would find the job by this name (saved before the request)
    expect(state.get(STATE_TRAINING_JOB)).toBe(job);
    expect(logger.lines).toContain(`warning: stopping training job ${job}`);
    const store = new FsObjectStore(path.join(repo.dir, '.model-store'));
    const prefix = `1.0.0-${repo.head().slice(0, 7)}/`;
    expect(await store.head(`${prefix}manifest.json`)).toBeUndefined();
    expect(await store.head(leaseKey(prefix))).toBeUndefined();
  });

  it('a run that loses sight of its job (describe fails) stops it before failing', async () => {
    const repo = new TempRepo('mp-sm-lost-');
    cpSync(DEMO, repo.dir, { recursive: true });
    repo.commit('demo');
    const sm = new FakeSageMaker();
    let describes = 0;
    const describe = sm.describeTrainingJob.bind(sm);
    sm.describeTrainingJob = async (name) => {
      if (++describes === 2) throw new Error('DescribeTrainingJob: ThrottlingException: Rate exceeded');
      return describe(name);
    };
    const { ctx } = await ctxFor(repo.dir, 'train', {
      'train-engine': 'sagemaker',
      'sagemaker-image': DEPLOY['serving-image'],
      'sagemaker-role': DEPLOY['sagemaker-role'],
      'data-key': 'none',
    });
    await expect(trainOnSageMaker(ctx, sm)).rejects.toThrow('ThrottlingException: Rate exceeded');
    const job = [...sm.jobs.keys()][0];
    expect(sm.calls).toEqual([`createTrainingJob ${job}`, `stopTrainingJob ${job}`]);
  });
});
