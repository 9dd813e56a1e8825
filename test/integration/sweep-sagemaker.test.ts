import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { ownerVerdict, sweepCommand } from '../../src/commands/sweep';
import { sweepTrainingJobs } from '../../src/commands/sweep-sagemaker';
import type { CommandContext } from '../../src/commands/types';
import type { CiRunStatus } from '../../src/core/ports';
import type { TrainingJobRequest } from '../../src/core/sagemaker';
import { buildContext } from '../../src/runner';
import { FakeSageMaker } from '../helpers/fake-sagemaker';
import { MemoryLogger } from '../helpers/memory-logger';

/*
 * sweep stopping SageMaker training jobs. moto 5.2.1 has no StopTrainingJob (and its jobs are Completed at
 * once), so stopping runs on FakeSageMaker, the fake of the port; test/e2e/sagemaker-cli.test.ts shows on
 * moto that sweep finds a run's jobs by name and tags (ListTrainingJobs + ListTags).
 */

function job(name: string, tags: Record<string, string>): TrainingJobRequest {
  return {
    TrainingJobName: name,
    Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
  } as never;
}

const RUN = (id: string) => ({
  'model-pipeline': 'true',
  'model-pipeline:ci-run': `github:org/repo:${id}`,
  'model-pipeline:ci-attempt': '1',
  'model-pipeline:model-prefix': `m/1.0.0-${id}/`,
});

async function sweepCtx(inputs: Record<string, string>, finished: string[] = []) {
  const logger = new MemoryLogger();
  const ctx = await buildContext(sweepCommand, {
    command: 'sweep',
    inputs: { backend: 'local', ...inputs },
    env: {},
    cwd: mkdtempSync(path.join(tmpdir(), 'mp-sweep-sm-')),
    logger,
    state: new MemoryState(),
    signal: new AbortController().signal,
  });
  const asked: string[] = [];
  const withCi: CommandContext = {
    ...ctx,
    deps: {
      ...ctx.deps,
      ciRuns: () => ({
        status: async (run): Promise<CiRunStatus> => {
          asked.push(run.runId);
          return finished.includes(run.runId)
            ? { finished: true, detail: 'completed (success)' }
            : { finished: false, detail: 'in_progress' };
        },
      }),
    },
  };
  return { ctx: withCi, logger, asked };
}

async function fakeWithJobs(): Promise<FakeSageMaker> {
  const sm = new FakeSageMaker();
  await sm.createTrainingJob(job('mp-m-1-0-0-aaaaaaa-000001', RUN('111')));
  await sm.createTrainingJob(job('mp-m-1-0-0-bbbbbbb-000002', RUN('222')));
  await sm.createTrainingJob(job('mp-m-1-0-0-ccccccc-000003', RUN('333')));
  // not the tool's: no model-pipeline tag, or not named mp-
  await sm.createTrainingJob(job('mp-someone-else', { 'model-pipeline:ci-run': 'github:org/repo:111' }));
  await sm.createTrainingJob(job('other-job', RUN('111')));
  return sm;
}

describe('sweep stops the SageMaker training jobs of a run (fake of the port: moto has no StopTrainingJob)', () => {
  it('run-id: dry run lists what it would stop and stops nothing; then stops exactly the run’s job', async () => {
    const sm = await fakeWithJobs();
    const { ctx } = await sweepCtx({ 'run-id': '111', 'sweep-dry-run': 'true' });
    const o = {
      runId: '111',
      ownerVerdict: (tags: Record<string, string>) => ownerVerdict(ctx, { tags }, '111', new Map()),
    };
    const dry = await sweepTrainingJobs(ctx, sm, { ...o, dryRun: true });
    expect(dry.text).toEqual([
      '1 of 1 SageMaker training jobs would be stopped; dry run, none stopped',
      'mp-m-1-0-0-aaaaaaa-000001 InProgress: would stop: belongs to CI run 111 (run-id)',
    ]);
    expect(sm.calls.filter((c) => c.startsWith('stop'))).toEqual([]);

    const real = await sweepTrainingJobs(ctx, sm, { ...o, dryRun: false });
    expect(real.stopped).toEqual(['mp-m-1-0-0-aaaaaaa-000001']);
    expect(sm.calls.filter((c) => c.startsWith('stop'))).toEqual([
      'stopTrainingJob mp-m-1-0-0-aaaaaaa-000001',
    ]);
    // a second sweep of the same run finds it stopped: reported, nothing to stop
    const again = await sweepTrainingJobs(ctx, sm, { ...o, dryRun: false });
    expect(again.text.slice(1)).toEqual([
      'mp-m-1-0-0-aaaaaaa-000001 Stopped: nothing to stop (Stopped): belongs to CI run 111 (run-id)',
    ]);
    expect(sm.calls.filter((c) => c.startsWith('stop'))).toHaveLength(1);
  });

  it('without run-id: stops the running jobs whose CI run has finished, keeps the others', async () => {
    const sm = await fakeWithJobs();
    const { ctx, asked } = await sweepCtx({}, ['222']);
    const r = await sweepTrainingJobs(ctx, sm, {
      dryRun: false,
      ownerVerdict: (tags) => ownerVerdict(ctx, { tags }, undefined, new Map()),
    });
    expect(r.stopped).toEqual(['mp-m-1-0-0-bbbbbbb-000002']);
    expect(r.rows.map((x) => [x.job.name, x.action])).toEqual([
      ['mp-m-1-0-0-aaaaaaa-000001', 'kept'],
      ['mp-m-1-0-0-bbbbbbb-000002', 'stopped'],
      ['mp-m-1-0-0-ccccccc-000003', 'kept'],
    ]);
    expect(asked.sort()).toEqual(['111', '222', '333']);
  });

  it('a job that cannot be stopped does not spare the others and is reported as a failure', async () => {
    const sm = await fakeWithJobs();
    const stop = sm.stopTrainingJob.bind(sm);
    sm.stopTrainingJob = async (name) => {
      if (name.includes('bbbbbbb')) throw new Error('ThrottlingException');
      return stop(name);
    };
    const { ctx } = await sweepCtx({}, ['111', '222']);
    const r = await sweepTrainingJobs(ctx, sm, {
      dryRun: false,
      ownerVerdict: (tags) => ownerVerdict(ctx, { tags }, undefined, new Map()),
    });
    expect(r.stopped).toEqual(['mp-m-1-0-0-aaaaaaa-000001']);
    expect(r.failures).toEqual(['mp-m-1-0-0-bbbbbbb-000002: ThrottlingException']);
  });
});
