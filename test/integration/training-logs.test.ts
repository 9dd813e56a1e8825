import { randomBytes } from 'node:crypto';
import { cpSync } from 'node:fs';
import * as path from 'node:path';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { AwsTrainingLogs } from '../../src/adapters/aws/cloudwatch-logs';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { waitForTrainingJob } from '../../src/commands/train-sagemaker';
import type { CommandContext } from '../../src/commands/types';
import { TRAINING_LOG_GROUP } from '../../src/core/training-logs';
import { buildContext, findCommand } from '../../src/runner';
import { motoEndpoint } from '../helpers/aws';
import { FakeSageMaker } from '../helpers/fake-sagemaker';
import { TempRepo } from '../helpers/git-repo';
import { MemoryLogger } from '../helpers/memory-logger';

/*
 * The training log streamed while a job is polled: CloudWatch Logs is moto 5.2.1's (log group, streams,
 * PutLogEvents, DescribeLogStreams, GetLogEvents through the SDK's paginators). The job itself runs on the
 * fake of the SageMaker port, because moto's training jobs are Completed the moment they are created, so
 * there would be no second poll to stream across.
 */

const DEMO = path.resolve(__dirname, '../../examples/demo-repo');

function logsClient(): CloudWatchLogsClient {
  return new CloudWatchLogsClient({ region: 'us-east-1', endpoint: motoEndpoint() });
}

async function seed(stream: string, events: { timestamp: number; message: string }[]): Promise<void> {
  await logsClient().send(
    new PutLogEventsCommand({ logGroupName: TRAINING_LOG_GROUP, logStreamName: stream, logEvents: events }),
  );
}

describe('training log streaming (CloudWatch Logs on moto)', () => {
  it('prints every line of every host once, in order, across polls, and the lines that reach CloudWatch after the job ended', async () => {
    const job = `mp-logs-${randomBytes(4).toString('hex')}`;
    const client = logsClient();
    await client.send(new CreateLogGroupCommand({ logGroupName: TRAINING_LOG_GROUP })).catch((err) => {
      if ((err as Error).name !== 'ResourceAlreadyExistsException') throw err;
    });
    const algo1 = `${job}/algo-1-1700000000`;
    const algo2 = `${job}/algo-2-1700000000`;
    // another job's stream in the same group: never shown
    const other = `${job}x/algo-1-1700000000`;
    for (const s of [algo1, algo2, other])
      await client.send(new CreateLogStreamCommand({ logGroupName: TRAINING_LOG_GROUP, logStreamName: s }));
    await seed(other, [{ timestamp: Date.now() - 60_000, message: 'not this job' }]);

    const sm = new FakeSageMaker([
      { status: 'InProgress', secondaryStatus: 'Starting' },
      { status: 'InProgress', secondaryStatus: 'Training' },
      { status: 'InProgress', secondaryStatus: 'Training' },
      { status: 'InProgress', secondaryStatus: 'Uploading' },
      { status: 'Completed', secondaryStatus: 'Completed' },
    ]);
    await sm.createTrainingJob({ TrainingJobName: job } as never);

    const t0 = Date.now() - 50_000;
    // what each sleep between two polls writes (the first poll finds no stream with lines yet)
    const batches: [string, { timestamp: number; message: string }[]][][] = [
      [[algo1, [{ timestamp: t0, message: 'downloading data' }]]],
      [
        [
          algo1,
          [
            { timestamp: t0 + 10, message: 'epoch 1 loss=0.9' },
            { timestamp: t0 + 30, message: 'epoch 2 loss=0.5' },
          ],
        ],
        [algo2, [{ timestamp: t0 + 20, message: 'epoch 1 loss=0.8\n' }]],
      ],
      [], // a poll with nothing new prints nothing
      // written while the job uploads: read by the poll that sees Completed
      [[algo2, [{ timestamp: t0 + 40, message: 'saved model' }]]],
      // reaching CloudWatch only after the job ended: read by the polls after the end, until one finds none
      [[algo1, [{ timestamp: t0 + 50, message: 'Traceback: the last line' }]]],
      [],
      [[algo1, [{ timestamp: t0 + 60, message: 'never read: the run went on' }]]],
    ];
    const logger = new MemoryLogger();
    const repo = new TempRepo('mp-sm-logs-');
    cpSync(DEMO, repo.dir, { recursive: true });
    repo.commit('demo');
    const base = await buildContext(findCommand('train'), {
      command: 'train',
      inputs: { backend: 'local' },
      env: {},
      cwd: repo.dir,
      logger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
    let sleeps = 0;
    const ctx: CommandContext = {
      ...base,
      deps: {
        ...base.deps,
        clock: {
          now: () => new Date(),
          sleep: async () => {
            for (const [stream, events] of batches[sleeps++] ?? []) await seed(stream, events);
          },
        },
      },
    };
    const logs = new AwsTrainingLogs({ region: 'us-east-1', endpoint: motoEndpoint() });
    const final = await waitForTrainingJob(ctx, sm, job, 1, logs);
    expect(final.status).toBe('Completed');
    expect(sleeps).toBe(6);
    expect(logger.lines).toEqual([
      `training job ${job}: InProgress (Starting)`,
      `training job ${job}: Starting -> InProgress (Training)`,
      '[algo-1] downloading data',
      '[algo-1] epoch 1 loss=0.9',
      '[algo-2] epoch 1 loss=0.8',
      '[algo-1] epoch 2 loss=0.5',
      `training job ${job}: Training -> InProgress (Uploading)`,
      `training job ${job}: Uploading -> Completed`,
      '[algo-2] saved model',
      '[algo-1] Traceback: the last line',
    ]);
  });

  it('a job whose log group does not exist yet streams nothing and fails nothing', async () => {
    const logs = new AwsTrainingLogs({
      region: 'us-east-1',
      endpoint: motoEndpoint(),
      logGroup: `/aws/sagemaker/none-${randomBytes(4).toString('hex')}`,
    });
    expect(await logs.streams('mp-nothing')).toEqual([]);
  });
});
