import { planPrune, TAG_MANAGED, type PruneEntry } from '../core/ami-lifecycle';
import { PipelineError, messageOf } from '../core/errors';
import { markdownTable } from '../core/markdown';
import { PRUNE_AMIS_OPTIONS } from './build-ami-options';
import { readAmiVersion } from './ami-version';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';

function row(e: PruneEntry, action: string): string[] {
  return [e.image.id, e.version ?? '', e.image.name ?? '', action, e.reason];
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const { options, deps } = ctx;
  const log = deps.logger;
  const { version } = await readAmiVersion(ctx);
  const keep = options.int('keep');
  const dryRun = options.bool('dry-run');
  const images = deps.images();
  const found = await images.findByTags({ [TAG_MANAGED]: 'true' });
  const plan = planPrune({ images: found, currentVersion: version, keep });
  if (!plan.keep.some((e) => e.version === version)) {
    log.warn(`no AMI has the current version ${version}: build-ami has not built it yet`);
  }

  const deregistered: string[] = [];
  const snapshots: string[] = [];
  if (!dryRun) {
    for (const e of plan.deregister) {
      try {
        const r = await images.deregister(e.image);
        deregistered.push(e.image.id);
        snapshots.push(...r.deletedSnapshots);
        log.info(`deregistered ${e.image.id} (${e.version}) and ${r.deletedSnapshots.length} snapshot(s)`);
      } catch (err) {
        throw new PipelineError(
          `pruning stopped at ${e.image.id} (${e.version}) after ${deregistered.length} AMI(s): ${messageOf(err)}`,
        );
      }
    }
  }

  const action = dryRun ? 'would deregister' : 'deregistered';
  const rows = [...plan.keep.map((e) => row(e, 'keep')), ...plan.deregister.map((e) => row(e, action))];
  const title = `### prune-amis (current ${version}, keep ${keep} previous${dryRun ? ', dry run' : ''})`;
  const summary = `${title}\n\n${markdownTable(['ami', 'version', 'name', 'action', 'reason'], rows)}\n`;
  const text = [
    `current AMI version ${version}; keeping ${keep} previous: ${plan.keptVersions.join(', ') || 'none'}`,
    ...rows.map((r) => `${r[0]}  ${r[1] || '-'}  ${r[3]}: ${r[4]}`),
    dryRun && plan.deregister.length > 0
      ? `dry run: nothing deleted; to delete, run again with ${options.mention('dry-run', false)}`
      : '',
  ]
    .filter((l) => l !== '')
    .join('\n');
  return {
    outputs: {
      'ami-version': version,
      'dry-run': String(dryRun),
      'pruned-ami-ids': JSON.stringify(dryRun ? plan.deregister.map((e) => e.image.id) : deregistered),
      'kept-ami-ids': JSON.stringify(plan.keep.map((e) => e.image.id)),
      'deleted-snapshot-ids': JSON.stringify(snapshots),
    },
    summary,
    text,
  };
}

export const pruneAmisCommand: CommandDef = {
  name: 'prune-amis',
  summary:
    'Deregister training AMIs older than the current version and the N before it (with their snapshots); dry run by default.',
  options: PRUNE_AMIS_OPTIONS,
  outputs: outputsOf('ami-version', 'dry-run', 'pruned-ami-ids', 'kept-ami-ids', 'deleted-snapshot-ids'),
  run,
};
