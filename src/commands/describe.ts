import { compareStored } from '../core/gates';
import { MODEL_SOURCES_OPTION } from './model-context';
import { headline } from '../core/benchmark';
import { markdownTable, textTable } from '../core/markdown';
import type { Manifest } from '../core/manifest';
import { defineOptions } from '../core/options';
import { formatBytes } from '../core/status';
import { formatDuration } from '../core/duration';
import {
  ALIAS_OPTION,
  MODEL_NAME_OPTION,
  MODEL_PREFIX_OPTION,
  mapLimit,
  modelRefFrom,
  readManifest,
} from './registry-context';
import { ENVIRONMENT_OPTION, REPO_OPTIONS, STORE_OPTIONS } from './common-options';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list)
  ...STORE_OPTIONS,
  ...REPO_OPTIONS,
  ENVIRONMENT_OPTION,
  MODEL_PREFIX_OPTION,
  ALIAS_OPTION,
  MODEL_NAME_OPTION,
  MODEL_SOURCES_OPTION,
]);

/** Lineage facts of a manifest as label/value pairs, in the order people ask for them. */
export function lineage(m: Manifest): string[][] {
  const rows: string[][] = [['model', `${m.model.name} ${m.model.version} (${m.model.sha})`]];
  if (m.config) rows.push(['config', `${m.config.path} sha256:${m.config.sha256}`]);
  if (m.git) rows.push(['git', [m.git.repository, m.git.branch, m.git.sha].filter(Boolean).join(' ')]);
  if (m.build) {
    rows.push(['built', `${m.build.startedAt} .. ${m.build.finishedAt} on ${m.build.backend}`]);
    if (m.build.ami) rows.push(['ami', m.build.ami]);
    if (m.build.instanceType)
      rows.push(['instance', [m.build.instanceType, m.build.instanceId].filter(Boolean).join(' ')]);
    if (m.build.actor) rows.push(['by', m.build.actor]);
    if (m.build.runUrl) rows.push(['run', m.build.runUrl]);
  }
  if (m.benchmark) {
    const files = [
      m.benchmark.file && `metrics ${m.benchmark.file}`,
      m.benchmark.report && `report ${m.benchmark.report}`,
    ].filter(Boolean);
    rows.push([
      'benchmark',
      `${m.benchmark.passed ? 'passed' : 'failed'}${files.length ? ` (${files.join(', ')})` : ''}`,
    ]);
  }
  if (m.metrics) rows.push(['metrics', headline(new Map(Object.entries(m.metrics.values)), 8)]);
  if (m.sources)
    rows.push([
      'sources',
      Object.entries(m.sources)
        .map(([p, h]) => `${p} ${h.slice(0, 12)}`)
        .join(', '),
    ]);
  return rows;
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const store = ctx.deps.store();
  const ref = await modelRefFrom(ctx, { alias: true, environment: true, config: true });
  const m = await readManifest(store, ref);
  const uri = store.uri(ref.folder);
  // what the store reports now against the manifest's record of the upload (HEAD only, no bytes)
  const checks = await mapLimit(m.files, 8, async (f) => {
    if (!f.stored) return 'not recorded';
    const v = compareStored(f.name, { ...f.stored, size: f.size }, await store.stat(ref.folder + f.name));
    if (v.verdict === 'changed') {
      ctx.deps.logger.warn(v.problem);
      return 'CHANGED';
    }
    return v.verdict === 'same' ? 'as uploaded' : 'rewritten (promote hashes it)';
  });
  const files = m.files.map((f, i) => [f.name, formatBytes(f.size), `sha256:${f.sha256}`, checks[i]]);
  const inputs = (m.inputs ?? []).map((i) => [
    i.key,
    i.size === undefined ? '-' : formatBytes(i.size),
    i.sha256 ? `sha256:${i.sha256}` : '-',
  ]);
  const steps = (m.steps ?? []).map((st) => [
    st.name,
    st.cacheHit ? 'cached' : 'ran',
    formatDuration(st.seconds),
    st.outputs.join(', ') || '-',
    st.key,
  ]);
  const stepHeader = ['step', 'status', 'duration', 'outputs', 'key'];
  const info = lineage(m);
  const text = [
    `${ref.folder} (${uri})`,
    textTable(['', ''], info).split('\n').slice(1).join('\n'),
    '',
    'files:',
    textTable(['name', 'size', 'hash', 'in the store'], files),
    ...(inputs.length ? ['', 'inputs:', textTable(['key', 'size', 'hash'], inputs)] : []),
    ...(steps.length ? ['', 'steps:', textTable(stepHeader, steps)] : []),
  ].join('\n');
  const summary =
    `### ${ref.folder}\n\n${markdownTable(['', ''], [['uri', uri], ...info])}\n\n` +
    `#### files\n\n${markdownTable(['name', 'size', 'hash', 'in the store'], files)}\n` +
    (inputs.length ? `\n#### inputs\n\n${markdownTable(['key', 'size', 'hash'], inputs)}\n` : '') +
    (steps.length ? `\n#### steps\n\n${markdownTable(stepHeader, steps)}\n` : '');
  return {
    outputs: { 'model-prefix': ref.folder, 'model-uri': uri, manifest: JSON.stringify(m) },
    text,
    summary,
  };
}

export const describeCommand: CommandDef = {
  name: 'describe',
  summary: "Print a model's manifest: files with hashes, inputs, config, AMI, commit, who built it and when.",
  options: OPTIONS,
  outputs: outputsOf('model-prefix', 'model-uri', 'manifest'),
  run,
};
