import {
  CloudWatchLogsClient,
  paginateDescribeLogStreams,
  paginateGetLogEvents,
} from '@aws-sdk/client-cloudwatch-logs';
import { TRAINING_LOG_GROUP, type LogEvent, type TrainingLogs } from '../../core/training-logs';
import { bindAbortSignal, boundedClientConfig } from './client-config';
import { describeAwsError } from './errors';
import { DEFAULT_REGION } from '../../core/region';

export interface CloudWatchLogsOptions {
  region?: string;
  /** Custom endpoint (moto in tests). */
  endpoint?: string;
  client?: CloudWatchLogsClient;
  signal?: AbortSignal;
  logGroup?: string;
}

/**
 * A training job's log in CloudWatch Logs: DescribeLogStreams finds its streams (`<job>/algo-N-...`),
 * GetLogEvents reads each from the token the previous read ended at (the SDK's paginators walk the pages;
 * GetLogEvents answers its last page with the token it was given, hence stopOnSameToken).
 */
export class AwsTrainingLogs implements TrainingLogs {
  readonly client: CloudWatchLogsClient;
  private readonly group: string;

  constructor(o: CloudWatchLogsOptions = {}) {
    this.group = o.logGroup ?? TRAINING_LOG_GROUP;
    this.client =
      o.client ??
      bindAbortSignal(
        new CloudWatchLogsClient({
          ...boundedClientConfig(),
          region: o.region ?? DEFAULT_REGION,
          endpoint: o.endpoint || undefined,
        }),
        o.signal,
      );
  }

  async streams(jobName: string): Promise<string[]> {
    const out: string[] = [];
    try {
      const pages = paginateDescribeLogStreams(
        { client: this.client },
        { logGroupName: this.group, logStreamNamePrefix: `${jobName}/` },
      );
      for await (const page of pages)
        for (const s of page.logStreams ?? []) if (s.logStreamName) out.push(s.logStreamName);
    } catch (err) {
      // the group appears with the first job of the account that logs: until then there is nothing to read
      if ((err as { name?: string })?.name === 'ResourceNotFoundException') return [];
      throw describeAwsError(err, `DescribeLogStreams ${this.group} ${jobName}/`);
    }
    return out.sort();
  }

  async events(stream: string, token: string | undefined): Promise<{ events: LogEvent[]; token?: string }> {
    const events: LogEvent[] = [];
    let next = token;
    try {
      const pages = paginateGetLogEvents(
        { client: this.client, stopOnSameToken: true },
        { logGroupName: this.group, logStreamName: stream, startFromHead: true, nextToken: token },
      );
      for await (const page of pages) {
        for (const e of page.events ?? [])
          events.push({ timestamp: e.timestamp ?? 0, message: e.message ?? '' });
        if (page.nextForwardToken) next = page.nextForwardToken;
      }
    } catch (err) {
      throw describeAwsError(err, `GetLogEvents ${this.group} ${stream}`);
    }
    return { events, token: next };
  }
}
