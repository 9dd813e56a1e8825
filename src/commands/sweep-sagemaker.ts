import { formatDuration } from '../core/duration';
import type { SweepVerdict } from '../core/instance-tags';
import { PIPELINE_TAG } from '../core/instance-tags';
import { markdownTable } from '../core/markdown';
import { TRAINING_JOB_PREFIX, type SageMaker, type TrainingJobInfo } from '../core/sagemaker';
import type { CommandContext } from './types';

/** How far back `sweep` with run-id looks for the run's finished jobs (to report them). */
const RUN_LOOKBACK_MS = 30 * 24 * 3600_000;

export interface JobSweep {
  rows: { job: TrainingJobInfo; verdict: SweepVerdict; action: string }[];
  stopped: string[];
  failures: string[];
  headline: string;
  summary: string;
  text: string[];
}

/**
 * `sweep`'s SageMaker half: the tool's training jobs (named `mp-…`, tagged `model-pipeline`) that belong to
 * the run named by run-id, to this job (own-job), to a finished CI run, or are older than max-age, are
 * stopped (StopTrainingJob). A job's own stopping condition (max-runtime, max-wait) ends it anyway; this
 * ends it when its run is gone. With run-id, the run's finished jobs are listed too, as "nothing to stop".
 */
export async function sweepTrainingJobs(
  ctx: CommandContext,
  sm: SageMaker,
  o: {
    dryRun: boolean;
    runId?: string;
    maxAgeSeconds?: number;
    /** sweep's verdict from the CI tags (run-id, own-job, finished CI run), shared with instances. */
    ownerVerdict: (tags: Record<string, string>) => Promise<SweepVerdict | undefined>;
  },
): Promise<JobSweep> {
  const log = ctx.deps.logger;
  const now = ctx.deps.clock.now();
  const listed = await sm.listTrainingJobs(
    TRAINING_JOB_PREFIX,
    o.runId
      ? { activeOnly: false, createdAfter: new Date(now.getTime() - RUN_LOOKBACK_MS) }
      : { activeOnly: true },
  );
  const rows: JobSweep['rows'] = [];
  for (const job of listed) {
    const tags = job.tags ?? {};
    if (tags[PIPELINE_TAG] !== 'true') continue;
    const active = job.status === 'InProgress';
    let verdict: SweepVerdict | undefined;
    if (
      active &&
      o.maxAgeSeconds !== undefined &&
      job.createdAt &&
      now.getTime() - job.createdAt.getTime() > o.maxAgeSeconds * 1000
    )
      verdict = { expired: true, reason: `older than max-age ${formatDuration(o.maxAgeSeconds)}` };
    verdict ??= await o.ownerVerdict(tags);
    // with run-id only the run's jobs are of interest; without it, every running job is reported
    if (o.runId && !verdict?.expired) continue;
    if (!active) {
      rows.push({
        job,
        verdict: verdict ?? { expired: false, reason: '' },
        action: `nothing to stop (${job.status})`,
      });
      continue;
    }
    rows.push({
      job,
      verdict: verdict ?? {
        expired: false,
        reason: 'its CI run is not known to be over; its stopping condition ends it',
      },
      action: verdict?.expired ? (o.dryRun ? 'would stop' : 'stop') : 'kept',
    });
  }
  rows.sort((a, b) => a.job.name.localeCompare(b.job.name));

  const stopped: string[] = [];
  const failures: string[] = [];
  const toStop = rows.filter((r) => r.action === 'stop' || r.action === 'would stop');
  if (o.dryRun) {
    for (const r of toStop) log.info(`dry run: would stop training job ${r.job.name}: ${r.verdict.reason}`);
  } else {
    const results = await Promise.allSettled(
      toStop.map(async (r) => {
        log.info(`stopping training job ${r.job.name}: ${r.verdict.reason}`);
        await sm.stopTrainingJob(r.job.name);
      }),
    );
    results.forEach((res, i) => {
      const r = toStop[i];
      if (res.status === 'fulfilled') {
        r.action = 'stopped';
        stopped.push(r.job.name);
      } else {
        r.action = 'FAILED';
        failures.push(`${r.job.name}: ${(res.reason as Error)?.message ?? String(res.reason)}`);
      }
    });
  }
  const headline = o.dryRun
    ? `${toStop.length} of ${rows.length} SageMaker training jobs would be stopped; dry run, none stopped`
    : `stopped ${stopped.length} of ${rows.length} SageMaker training jobs`;
  const table = markdownTable(
    ['training job', 'status', 'created', 'model prefix', 'verdict', 'action'],
    rows.map((r) => [
      r.job.name,
      r.job.status,
      r.job.createdAt?.toISOString() ?? '?',
      r.job.tags?.['model-pipeline:model-prefix'] ?? '',
      r.verdict.reason,
      r.action,
    ]),
  );
  return {
    rows,
    stopped,
    failures,
    headline,
    summary: `${headline}\n\n${rows.length > 0 ? table + '\n' : ''}`,
    text: [
      headline,
      ...rows.map(
        (r) => `${r.job.name} ${r.job.status}: ${r.action}${r.verdict.reason ? `: ${r.verdict.reason}` : ''}`,
      ),
    ],
  };
}
