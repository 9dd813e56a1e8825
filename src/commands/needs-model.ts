import { parseModelConfig } from '../core/config';
import { decideNeedsModel, type NeedsModelDecision } from '../core/needs-model';
import { parseModelName } from '../core/identity';
import { defineOptions } from '../core/options';
import { markdownTable } from '../core/markdown';
import {
  BASE_REF_OPTION,
  baseRefLabel,
  FORCE_OPTION,
  loadTargets,
  MODEL_SOURCES_OPTION,
  resolveBaseRef,
  resolveTarget,
  type ModelTarget,
} from './model-context';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { liveLease } from './folder-lease';
import { REPO_OPTIONS, STORE_OPTIONS } from './common-options';

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list)
  ...STORE_OPTIONS,
  ...REPO_OPTIONS,
  BASE_REF_OPTION,
  FORCE_OPTION,
  MODEL_SOURCES_OPTION,
]);

interface Row extends NeedsModelDecision {
  target: ModelTarget;
  uri: string;
}

async function decide(ctx: CommandContext, target: ModelTarget, baseRef: string | undefined): Promise<Row> {
  const store = ctx.deps.store();
  // independent reads at once: on S3 each is a round trip of every needs-model run
  const [baseText, { resolution }, lease] = await Promise.all([
    baseRef ? ctx.deps.git.showFile(baseRef, target.config.path) : undefined,
    resolveTarget(ctx, target),
    liveLease(store, target.prefix, ctx.deps.clock.now()),
  ]);
  // a base config that no longer parses cannot tell us its version: treat the model as new there
  let baseVersion: string | undefined;
  if (baseText !== undefined) {
    try {
      baseVersion = parseModelConfig(baseText, `${baseRef}:${target.config.path}`).version;
    } catch (err) {
      ctx.deps.logger.warn(`${(err as Error).message}; comparing as if the config were new`);
    }
  }
  const d = decideNeedsModel({
    training: lease && `run ${lease.run} holds the lease until ${lease.expiresAt}`,
    id: target.id,
    baseVersion,
    baseRef: await baseRefLabel(ctx, baseRef),
    resolution,
    force: ctx.options.bool('force'),
  });
  return { target, ...d, uri: store.uri(d.folder) };
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const { targets, glob } = await loadTargets(ctx);
  const baseRef = await resolveBaseRef(ctx);
  const shortBase = baseRef ? await baseRefLabel(ctx, baseRef) : 'none: first commit';
  const rows: Row[] = [];
  for (const t of targets) rows.push(await decide(ctx, t, baseRef));

  const matrix = rows
    .filter((r) => r.needsModel)
    .map((r) => ({
      name: r.target.modelName ?? r.target.id.name,
      'config-path': r.target.config.path,
      'model-prefix': r.target.prefix,
      'model-version': r.target.id.version,
      'model-sha': r.target.id.sha7,
    }));
  // every model of this commit that has a folder (a stored one serves it) or gets one (it is built): what
  // promote jobs iterate over, so main promotes the model reviewed on the branch without a train job
  const promoteMatrix = rows
    .filter((r) => r.needsModel || ['this-commit', 'ancestor', 'newest'].includes(r.rule))
    .map((r) => ({
      name: r.target.modelName ?? r.target.id.name,
      'config-path': r.target.config.path,
      'model-prefix': r.folder,
      'needs-model': String(r.needsModel),
      rule: r.rule,
    }));
  const single = !glob && rows.length === 1 ? rows[0] : undefined;
  const singleId = single
    ? parseModelName(single.folder.replace(/\/$/, '').split('/').pop() ?? '')
    : undefined;
  const anyNeeded = rows.some((r) => r.needsModel);
  const outputs: Record<string, string> = {
    'needs-model': String(anyNeeded),
    reason: single ? single.reason : `${matrix.length} of ${rows.length} models need building`,
    rule: single ? single.rule : rows.map((r) => r.rule).join(','),
    'model-prefix': single?.folder ?? '',
    'model-version': single?.target.id.version ?? '',
    'model-sha': singleId?.sha7 ?? single?.target.id.sha7 ?? '',
    'model-uri': single?.uri ?? '',
    matrix: JSON.stringify(matrix),
    'promote-matrix': JSON.stringify(promoteMatrix),
  };
  const table = markdownTable(
    ['model', 'config', 'needs model', 'rule', 'reason'],
    rows.map((r) => [
      r.folder,
      r.target.config.path,
      (r.needsModel ? 'yes' : 'no') + (r.training ? ' (training)' : ''),
      r.rule,
      r.reason,
    ]),
  );
  const summary = `### needs-model (base ${shortBase})\n\n${table}\n`;
  const text = rows
    .map(
      (r) =>
        `${r.folder}: ${r.needsModel ? 'needs a model' : 'no build'}${r.training ? ' (training)' : ''} (${r.rule}): ${r.reason}`,
    )
    .join('\n');
  return { outputs, summary, text };
}

export const needsModelCommand: CommandDef = {
  name: 'needs-model',
  summary: 'Decide whether a model must be built for this commit, and say why.',
  options: OPTIONS,
  outputs: [
    { name: 'needs-model', description: '`true` when a model must be built.' },
    { name: 'reason', description: 'Why, in words.' },
    {
      name: 'rule',
      description:
        'Which rule decided: `this-commit`, `ancestor` or `newest` (a stored folder serves this commit, see docs/store-layout.md), else `forced`, `new-model`, `version-bump`, `rollback` or `unchanged`.',
    },
    {
      name: 'model-prefix',
      description:
        'Store folder of the model of this commit: the stored folder that serves it (no build), else the one to build, `<version>-<sha7>/` under the store prefix.',
    },
    { name: 'model-version', description: 'The config version.' },
    { name: 'model-sha', description: 'Short sha (7) in the name of the model-prefix folder.' },
    { name: 'model-uri', description: 'Full URI of the model-prefix folder (s3:// or file://).' },
    { name: 'matrix', description: 'JSON list of the models that need building (for `strategy.matrix`).' },
    {
      name: 'promote-matrix',
      description:
        'JSON list of every model of this commit that has a folder or gets one (name, config-path, model-prefix, needs-model, rule): the `strategy.matrix` of promote jobs, so main promotes the folder reviewed on the branch without training.',
    },
  ],
  run,
};
