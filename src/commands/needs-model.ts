import { parseModelConfig } from '../core/config';
import { decideNeedsModel } from '../core/needs-model';
import { defineOptions } from '../core/options';
import { markdownTable } from '../core/markdown';
import {
  BASE_REF_OPTION,
  baseRefLabel,
  FORCE_OPTION,
  folderState,
  loadTargets,
  resolveBaseRef,
  type ModelTarget,
} from './model-context';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';

export const OPTIONS = defineOptions([BASE_REF_OPTION, FORCE_OPTION]);

interface Row {
  target: ModelTarget;
  needsModel: boolean;
  reason: string;
  uri: string;
}

async function decide(ctx: CommandContext, target: ModelTarget, baseRef: string | undefined): Promise<Row> {
  const store = ctx.deps.store();
  const baseText = baseRef ? await ctx.deps.git.showFile(baseRef, target.config.path) : undefined;
  // a base config that no longer parses cannot tell us its version: treat the model as new there
  let baseVersion: string | undefined;
  if (baseText !== undefined) {
    try {
      baseVersion = parseModelConfig(baseText, `${baseRef}:${target.config.path}`).version;
    } catch (err) {
      ctx.deps.logger.warn(`${(err as Error).message}; comparing as if the config were new`);
    }
  }
  const state = await folderState(store, target.prefix);
  const d = decideNeedsModel({
    id: target.id,
    baseVersion,
    baseRef: await baseRefLabel(ctx, baseRef),
    completeInStore: state.complete,
    partialInStore: state.partial,
    force: ctx.options.bool('force'),
  });
  return { target, ...d, uri: store.uri(target.prefix) };
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
  const single = !glob && rows.length === 1 ? rows[0] : undefined;
  const anyNeeded = rows.some((r) => r.needsModel);
  const outputs: Record<string, string> = {
    'needs-model': String(anyNeeded),
    reason: single ? single.reason : `${matrix.length} of ${rows.length} models need building`,
    'model-prefix': single?.target.prefix ?? '',
    'model-version': single?.target.id.version ?? '',
    'model-sha': single?.target.id.sha7 ?? '',
    'model-uri': single?.uri ?? '',
    matrix: JSON.stringify(matrix),
  };
  const table = markdownTable(
    ['model', 'config', 'needs model', 'reason'],
    rows.map((r) => [r.target.prefix, r.target.config.path, r.needsModel ? 'yes' : 'no', r.reason]),
  );
  const summary = `### needs-model (base ${shortBase})\n\n${table}\n`;
  const text = rows
    .map((r) => `${r.target.prefix}: ${r.needsModel ? 'needs a model' : 'no build'}: ${r.reason}`)
    .join('\n');
  return { outputs, summary, text };
}

export const needsModelCommand: CommandDef = {
  name: 'needs-model',
  summary: 'Decide whether a model must be built for this commit, and say why.',
  options: OPTIONS,
  outputs: outputsOf(
    'needs-model',
    'reason',
    'model-prefix',
    'model-version',
    'model-sha',
    'model-uri',
    'matrix',
  ),
  run,
};
