/**
 * The training log of a SageMaker job (CloudWatch Logs group /aws/sagemaker/TrainingJobs, one stream per
 * instance, `<job>/algo-<n>-<epoch>`), followed while the job is polled so it shows in the CI log.
 * The port is what a follower asks of CloudWatch Logs; the adapter is src/adapters/aws/cloudwatch-logs.ts.
 */

export const TRAINING_LOG_GROUP = '/aws/sagemaker/TrainingJobs';

export interface LogEvent {
  timestamp: number;
  message: string;
}

export interface TrainingLogs {
  /** The job's log streams (names start with `<job>/`); none while the job has not started logging. */
  streams(jobName: string): Promise<string[]>;
  /**
   * The events of one stream after `token` (from its start when undefined), in order, and the token to
   * continue from: asking again with it returns only what was written since.
   */
  events(stream: string, token: string | undefined): Promise<{ events: LogEvent[]; token?: string }>;
}

/** `<job>/algo-1-1700000000` -> `algo-1`: the host that wrote the line. */
export function streamHost(jobName: string, stream: string): string {
  const rest = stream.startsWith(`${jobName}/`) ? stream.slice(jobName.length + 1) : stream;
  return /^(algo-\d+)(-\d+)?$/.exec(rest)?.[1] ?? rest;
}

/**
 * Follows every stream of one job: each poll returns the lines written since the previous poll, each line
 * once, each stream in its order and the streams merged by time (a distributed run's hosts interleave).
 * A follower that cannot read the log (no permission, throttled) says so once and stops following: the
 * log is progress, never a reason to fail or stop a training job.
 */
export class LogFollower {
  private readonly tokens = new Map<string, string | undefined>();
  private failed = false;

  constructor(
    private readonly logs: TrainingLogs,
    private readonly jobName: string,
    private readonly warn: (line: string) => void,
  ) {}

  async poll(): Promise<string[]> {
    if (this.failed) return [];
    try {
      for (const s of await this.logs.streams(this.jobName))
        if (!this.tokens.has(s)) this.tokens.set(s, undefined);
      const got: { host: string; order: number; e: LogEvent }[] = [];
      let order = 0;
      for (const [stream, token] of this.tokens) {
        const r = await this.logs.events(stream, token);
        this.tokens.set(stream, r.token ?? token);
        const host = streamHost(this.jobName, stream);
        for (const e of r.events) got.push({ host, order: order++, e });
      }
      // stable: one stream's lines keep their order when timestamps tie
      got.sort((a, b) => a.e.timestamp - b.e.timestamp || a.order - b.order);
      return got.map(({ host, e }) => `[${host}] ${e.message.replace(/\r?\n$/, '')}`);
    } catch (err) {
      this.failed = true;
      this.warn(
        `cannot read the training log of ${this.jobName} in CloudWatch Logs (${(err as Error)?.message ?? String(err)}); the job goes on, its log is in ${TRAINING_LOG_GROUP}`,
      );
      return [];
    }
  }
}
