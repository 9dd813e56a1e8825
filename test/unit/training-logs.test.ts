import { LogFollower, streamHost, type TrainingLogs } from '../../src/core/training-logs';

describe('LogFollower', () => {
  it('names each line by its host', () => {
    expect(streamHost('job', 'job/algo-2-1700000000')).toBe('algo-2');
    expect(streamHost('job', 'job/algo-10')).toBe('algo-10');
    expect(streamHost('job', 'job/something-else')).toBe('something-else');
  });

  it('a log it cannot read is said once, and never fails the poll', async () => {
    let calls = 0;
    const denied: TrainingLogs = {
      streams: async () => {
        calls++;
        throw new Error('DescribeLogStreams: access denied by AWS');
      },
      events: async () => ({ events: [] }),
    };
    const warnings: string[] = [];
    const f = new LogFollower(denied, 'job-1', (l) => warnings.push(l));
    expect(await f.poll()).toEqual([]);
    expect(await f.poll()).toEqual([]);
    expect(calls).toBe(1);
    expect(warnings).toEqual([
      'cannot read the training log of job-1 in CloudWatch Logs (DescribeLogStreams: access denied by AWS); the job goes on, its log is in /aws/sagemaker/TrainingJobs',
    ]);
  });
});
