import { formatDuration, parseDuration } from '../core/duration';
import { PipelineError } from '../core/errors';
import { PIPELINE_TAG, sweepVerdict, type SweepVerdict } from '../core/instance-tags';
import { markdownTable } from '../core/markdown';
import { defineOptions } from '../core/options';
import type { InstanceInfo } from '../core/ports';
import { EC2_ENDPOINT_OPTION } from './build-ami-options';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';

export const OPTIONS = defineOptions([
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
  EC2_ENDPOINT_OPTION,
]);

interface Row {
  instance: InstanceInfo;
  verdict: SweepVerdict;
  action: string;
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const dryRun = ctx.options.bool('sweep-dry-run');
  const maxAgeText = ctx.options.string('max-age');
  const maxAge = maxAgeText ? parseDuration(maxAgeText, 'max-age') : undefined;
  // instances live on EC2 whatever the store: only an explicit local backend sweeps local processes
  const local = ctx.options.string('backend') === 'local';
  const compute = ctx.deps.compute(local ? undefined : 'aws');
  const log = ctx.deps.logger;

  const instances = await compute.findByTags({ [PIPELINE_TAG]: 'true' });
  const now = ctx.deps.clock.now();
  const rows: Row[] = instances
    .map((instance) => ({ instance, verdict: sweepVerdict(instance, now, maxAge), action: 'kept' }))
    .sort((a, b) => a.instance.id.localeCompare(b.instance.id));
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
  const summary = `### sweep\n\n${headline}\n\n${rows.length > 0 ? table + '\n' : ''}`;
  const text = [
    headline,
    ...rows.map((r) => `${r.instance.id} ${r.instance.state}: ${r.action}: ${r.verdict.reason}`),
  ].join('\n');

  if (failures.length > 0) {
    throw new PipelineError(
      `sweep could not terminate ${failures.length} instance(s): ${failures.join('; ')}` +
        (terminated.length > 0 ? ` (terminated: ${terminated.join(', ')})` : ''),
    );
  }
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
    'Terminate instances launched by this tool that outlived their max runtime (a safety net for cancelled CI jobs).',
  options: OPTIONS,
  outputs: outputsOf('terminated', 'expired'),
  run,
};
