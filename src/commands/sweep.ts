import { formatDuration } from '../core/duration';
import { PipelineError } from '../core/errors';
import {
  formatCiRun,
  parseCiRun,
  PIPELINE_TAG,
  sweepVerdict,
  TAG_CI_ATTEMPT,
  TAG_CI_JOB,
  TAG_CI_RUN,
  type SweepVerdict,
} from '../core/instance-tags';
import { markdownTable } from '../core/markdown';
import { defineOptions } from '../core/options';
import type { CiRunStatus, InstanceInfo } from '../core/ports';
import { ciRunOf } from '../core/ci-env';
import { EC2_ENDPOINT_OPTION } from './build-ami-options';

const GONE = new Set(['shutting-down', 'terminated']);
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';
import { STORE_OPTIONS } from './common-options';
import { SAGEMAKER_ENDPOINT_URL_OPTION, TRAIN_ENGINE_OPTION } from './sagemaker-options';
import { sweepTrainingJobs } from './sweep-sagemaker';
import { usesSageMaker } from './train-sagemaker-wiring';
import { createSageMaker } from '../wiring-sagemaker';

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list): the backend,
  // and the store and bucket when it sweeps SageMaker training jobs (the local run keeps them in the store)
  ...STORE_OPTIONS,
  {
    // not rotate's `dry-run`: that one defaults to true, a safety net must act by default
    name: 'sweep-dry-run',
    description: 'sweep: only list the instances that would be terminated (default: terminate them).',
    type: 'boolean',
    default: 'false',
    env: ['MODEL_PIPELINE_SWEEP_DRY_RUN'],
  },
  {
    name: 'max-age',
    description:
      'Also terminate tagged instances older than this (e.g. `12h`), whatever their own max-runtime tag says.',
    type: 'string',
    env: ['MODEL_PIPELINE_MAX_AGE'],
  },
  {
    name: 'run-id',
    description:
      "sweep: terminate every instance of this CI run (GitHub `github.run_id`, CircleCI `$CIRCLE_WORKFLOW_ID`), whatever its deadline. Use it after the whole workflow: it also ends the run's other jobs' instances.",
    type: 'string',
    env: ['MODEL_PIPELINE_RUN_ID'],
  },
  {
    name: 'own-job',
    description:
      'sweep: also terminate instances launched by this very CI job (same run, attempt and job), for a cleanup step after train in the same job (the orb train job does this).',
    type: 'boolean',
    default: 'false',
    env: ['MODEL_PIPELINE_OWN_JOB'],
  },
  {
    name: 'github-token',
    description:
      'sweep: token with `actions: read`; sweep then also terminates instances whose GitHub workflow run (attempt) has finished. Default: `GITHUB_TOKEN`.',
    type: 'string',
    env: ['MODEL_PIPELINE_GITHUB_TOKEN', 'GITHUB_TOKEN'],
    secret: true,
  },
  {
    name: 'circleci-token',
    description:
      'sweep: CircleCI API token; sweep then also terminates instances whose CircleCI workflow has finished. Default: `CIRCLE_TOKEN`.',
    type: 'string',
    env: ['MODEL_PIPELINE_CIRCLECI_TOKEN', 'CIRCLE_TOKEN'],
    secret: true,
  },
  {
    name: 'github-api-url',
    description: 'sweep: GitHub API asked about workflow runs (GitHub Enterprise sets `GITHUB_API_URL`).',
    type: 'string',
    default: 'https://api.github.com',
    env: ['MODEL_PIPELINE_GITHUB_API_URL', 'GITHUB_API_URL'],
  },
  {
    name: 'circleci-api-url',
    description: 'sweep: CircleCI API asked about workflows (a self-hosted CircleCI server has its own).',
    type: 'string',
    default: 'https://circleci.com',
    env: ['MODEL_PIPELINE_CIRCLECI_API_URL'],
  },
  EC2_ENDPOINT_OPTION,
  TRAIN_ENGINE_OPTION,
  SAGEMAKER_ENDPOINT_URL_OPTION,
]);

/**
 * Why an instance that is not past its deadline goes anyway: it belongs to the run named by run-id, or
 * the CI says its run has finished (a job killed hard leaves no one else to end it).
 */
export async function ownerVerdict(
  ctx: CommandContext,
  instance: Pick<InstanceInfo, 'tags'>,
  runId: string | undefined,
  asked: Map<string, Promise<CiRunStatus | undefined>>,
): Promise<SweepVerdict | undefined> {
  const run = parseCiRun(instance.tags[TAG_CI_RUN]);
  if (runId !== undefined)
    return run?.runId === runId || instance.tags[TAG_CI_RUN] === runId
      ? { expired: true, reason: `belongs to CI run ${runId} (run-id)` }
      : undefined;
  if (!run) return undefined;
  const attempt = instance.tags[TAG_CI_ATTEMPT];
  const own = ciRunOf(ctx.deps.ci);
  if (
    ctx.options.bool('own-job') &&
    own &&
    formatCiRun(own) === formatCiRun(run) &&
    (attempt ?? '') === (ctx.deps.ci.runAttempt ?? '') &&
    (instance.tags[TAG_CI_JOB] ?? '') === (ctx.deps.ci.job ?? '')
  )
    return { expired: true, reason: 'launched by this job, whose train step has ended (own-job)' };
  const key = `${formatCiRun(run)}#${run.provider === 'github' ? (attempt ?? '') : ''}`;
  if (!asked.has(key))
    asked.set(key, ctx.deps.ciRuns().status(run, run.provider === 'github' ? attempt : undefined));
  const status = await asked.get(key)!;
  if (!status?.finished) return undefined;
  return { expired: true, reason: `its CI run ${formatCiRun(run)} has finished: ${status.detail}` };
}

interface Row {
  instance: InstanceInfo;
  verdict: SweepVerdict;
  action: string;
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const dryRun = ctx.options.bool('sweep-dry-run');
  const maxAge = ctx.options.duration('max-age');
  // instances live on EC2 whatever the store: only an explicit local backend sweeps local processes
  const local = ctx.options.string('backend') === 'local';
  const compute = ctx.deps.compute(local ? undefined : 'aws');
  const log = ctx.deps.logger;

  const runId = ctx.options.string('run-id')?.trim() || undefined;

  const instances = await compute.findByTags({ [PIPELINE_TAG]: 'true' });
  const now = ctx.deps.clock.now();
  const asked = new Map<string, Promise<CiRunStatus | undefined>>();
  const rows: Row[] = await Promise.all(
    instances.map(async (instance) => {
      let verdict = sweepVerdict(instance, now, maxAge);
      if (!verdict.expired && !GONE.has(instance.state))
        verdict = (await ownerVerdict(ctx, instance, runId, asked)) ?? verdict;
      return { instance, verdict, action: 'kept' };
    }),
  );
  rows.sort((a, b) => a.instance.id.localeCompare(b.instance.id));
  const expired = rows.filter((r) => r.verdict.expired);

  const terminated: string[] = [];
  const failures: string[] = [];
  if (dryRun) {
    for (const r of expired) {
      r.action = 'would terminate';
      log.info(`dry run: would terminate ${r.instance.id}: ${r.verdict.reason}`);
    }
  } else {
    // one failure must not spare the others: terminate all, report failures at the end
    const results = await Promise.allSettled(
      expired.map(async (r) => {
        log.info(`terminating ${r.instance.id}: ${r.verdict.reason}`);
        await compute.terminate(r.instance.id);
        return r;
      }),
    );
    results.forEach((res, i) => {
      const r = expired[i];
      if (res.status === 'fulfilled') {
        r.action = 'terminated';
        terminated.push(r.instance.id);
      } else {
        r.action = 'FAILED';
        failures.push(`${r.instance.id}: ${(res.reason as Error)?.message ?? String(res.reason)}`);
      }
    });
  }

  // ssh-cidr rules whose instance ended without the tool's teardown (watchdog, killed job)
  let ruleError: string | undefined;
  const rules = await compute.sweepSshRules?.(dryRun).catch((err: Error) => {
    ruleError = err.message;
    return [];
  });
  if (rules?.length) log.info(`${dryRun ? 'would remove' : 'removed'} ssh-cidr rule(s): ${rules.join(', ')}`);
  const scope = maxAge !== undefined ? ` (max-age ${formatDuration(maxAge)})` : '';
  const where = local ? ' on the local backend' : '';
  const headline = dryRun
    ? `${expired.length} of ${rows.length} tagged instances${where} are past their deadline${scope}; dry run, none terminated`
    : `terminated ${terminated.length} of ${rows.length} tagged instances${where}${scope}`;
  const table = markdownTable(
    ['instance', 'state', 'launched', 'model prefix', 'verdict', 'action'],
    rows.map((r) => [
      r.instance.id,
      r.instance.state,
      r.instance.launchedAt?.toISOString() ?? '?',
      r.instance.tags['model-pipeline:model-prefix'] ?? '',
      r.verdict.reason,
      r.action,
    ]),
  );
  // train-engine sagemaker (or backend sagemaker): the tool's training jobs too
  const jobs = usesSageMaker(ctx)
    ? await sweepTrainingJobs(ctx, createSageMaker(ctx), {
        dryRun,
        runId,
        maxAgeSeconds: maxAge,
        ownerVerdict: (tags) => ownerVerdict(ctx, { tags }, runId, asked),
      })
    : undefined;
  failures.push(...(jobs?.failures ?? []));
  const summary =
    `### sweep\n\n${headline}\n\n${rows.length > 0 ? table + '\n' : ''}` + (jobs ? `\n${jobs.summary}` : '');
  const text = [
    headline,
    ...rows.map((r) => `${r.instance.id} ${r.instance.state}: ${r.action}: ${r.verdict.reason}`),
    ...(jobs?.text ?? []),
  ].join('\n');

  if (failures.length > 0) {
    throw new PipelineError(
      `sweep could not ${jobs?.failures.length ? 'terminate or stop' : 'terminate'} ${failures.length} ${jobs?.failures.length ? 'resource(s)' : 'instance(s)'}: ${failures.join('; ')}` +
        (terminated.length > 0 ? ` (terminated: ${terminated.join(', ')})` : ''),
    );
  }
  if (ruleError) throw new PipelineError(`sweep could not remove leftover ssh-cidr rules: ${ruleError}`);
  return {
    outputs: {
      terminated: JSON.stringify(terminated),
      expired: JSON.stringify(expired.map((r) => r.instance.id)),
    },
    summary,
    text,
  };
}

export const sweepCommand: CommandDef = {
  name: 'sweep',
  summary:
    "Terminate instances launched by this tool that outlived their max runtime, whose CI run has finished, or of one run (run-id): the safety net for killed CI jobs. With train-engine sagemaker, also stop the tool's SageMaker training jobs of such runs.",
  options: OPTIONS,
  outputs: outputsOf('terminated', 'expired'),
  run,
};
