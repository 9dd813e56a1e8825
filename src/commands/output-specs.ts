import { defineOutput, type OutputSpec, type OutputType } from '../core/options';

/**
 * Every output of every command, written once: the description goes to action.yml, the README and the orb,
 * the type tells `--json` how to print the value (action outputs and `MP_*` lines stay strings).
 */
export const OUTPUTS = {
  'model-prefix': defineOutput({
    name: 'model-prefix',
    description: 'Store folder of the model, `<version>-<sha7>/` under the store prefix.',
  }),
  'model-uri': defineOutput({
    name: 'model-uri',
    description: 'Full URI of the model folder (s3:// or file://).',
  }),
  'model-version': defineOutput({ name: 'model-version', description: 'The config version.' }),
  'model-sha': defineOutput({ name: 'model-sha', description: 'Short sha (7) of the commit.' }),
  'model-dir': defineOutput({ name: 'model-dir', description: 'Folder the model was unpacked into.' }),
  'model-prefixes': defineOutput({
    name: 'model-prefixes',
    description: 'JSON list of the matching model folders, newest first.',
    type: 'json',
  }),
  'needs-model': defineOutput({
    name: 'needs-model',
    description: '`true` when a model must be built.',
    type: 'boolean',
  }),
  reason: defineOutput({ name: 'reason', description: 'Why, in words.' }),
  rule: defineOutput({ name: 'rule', description: 'Which rule decided.' }),
  'promote-matrix': defineOutput({
    name: 'promote-matrix',
    description: 'JSON list of every model of this commit that has a folder or gets one.',
    type: 'json',
  }),
  matrix: defineOutput({
    name: 'matrix',
    description: 'JSON list of the models that need building (for `strategy.matrix`).',
    type: 'json',
  }),
  alias: defineOutput({ name: 'alias', description: 'The alias name.' }),
  aliases: defineOutput({
    name: 'aliases',
    description: 'JSON object alias -> model folder (when listing).',
    type: 'json',
  }),
  passed: defineOutput({
    name: 'passed',
    description: '`true` when every metric met its threshold (warnings pass).',
    type: 'boolean',
  }),
  'report-file': defineOutput({
    name: 'report-file',
    description: 'Path of the JUnit file written (benchmark_results.xml).',
  }),
  'ami-id': defineOutput({
    name: 'ami-id',
    description: 'The AMI of the version: the new one, or the one already built.',
  }),
  'ami-version': defineOutput({ name: 'ami-version', description: 'The AMI version.' }),
  built: defineOutput({ name: 'built', description: '`true` when this run built the AMI.', type: 'boolean' }),
  'ami-copies': defineOutput({
    name: 'ami-copies',
    description: 'JSON map of region to the AMI copied there.',
    type: 'json',
  }),
  manifest: defineOutput({ name: 'manifest', description: 'The manifest as JSON.', type: 'json' }),
  path: defineOutput({ name: 'path', description: 'Folder the model was downloaded to.' }),
  files: defineOutput({ name: 'files', description: 'Number of files downloaded.', type: 'integer' }),
  'deployment-record': defineOutput({
    name: 'deployment-record',
    description: 'URI of the deployment record written (fetch-model, deploy).',
  }),
  'config-sha256': defineOutput({ name: 'config-sha256', description: 'sha256 of the given config file.' }),
  environment: defineOutput({
    name: 'environment',
    description: 'Environment that was promoted (or demoted).',
  }),
  'previous-prefix': defineOutput({
    name: 'previous-prefix',
    description: 'Folder the environment pointed at before (empty for the first).',
  }),
  changed: defineOutput({
    name: 'changed',
    description: '`false` when the environment already pointed at the model (a re-run).',
    type: 'boolean',
  }),
  'dry-run': defineOutput({
    name: 'dry-run',
    description: '`true` when nothing was deleted, only planned.',
    type: 'boolean',
  }),
  'pruned-ami-ids': defineOutput({
    name: 'pruned-ami-ids',
    description: 'JSON list of the AMIs deregistered (or, in a dry run, that would be).',
    type: 'json',
  }),
  'kept-ami-ids': defineOutput({
    name: 'kept-ami-ids',
    description: 'JSON list of the AMIs kept.',
    type: 'json',
  }),
  'deleted-snapshot-ids': defineOutput({
    name: 'deleted-snapshot-ids',
    description: 'JSON list of the snapshots deleted.',
    type: 'json',
  }),
  'deleted-prefixes': defineOutput({
    name: 'deleted-prefixes',
    description: 'JSON list of the model folders deleted (or that would be, in a dry run).',
    type: 'json',
  }),
  'delete-count': defineOutput({
    name: 'delete-count',
    description: 'Number of model folders deleted (or planned for deletion).',
    type: 'integer',
  }),
  'kept-count': defineOutput({
    name: 'kept-count',
    description: 'Number of model folders kept.',
    type: 'integer',
  }),
  'deleted-objects': defineOutput({
    name: 'deleted-objects',
    description: 'Objects actually deleted (0 in a dry run).',
    type: 'integer',
  }),
  models: defineOutput({
    name: 'models',
    description: 'JSON list of model folders (prefix, version, sha, size, created, environments, benchmark).',
    type: 'json',
  }),
  count: defineOutput({ name: 'count', description: 'Number of model folders.', type: 'integer' }),
  terminated: defineOutput({
    name: 'terminated',
    description: 'JSON list of the instance ids terminated by sweep.',
    type: 'json',
  }),
  expired: defineOutput({
    name: 'expired',
    description: 'JSON list of the instance ids past their deadline (terminated, or would be in a dry run).',
    type: 'json',
  }),
  'instance-id': defineOutput({
    name: 'instance-id',
    description: 'Id of the instance the model was trained on (terminated).',
  }),
  'duration-seconds': defineOutput({
    name: 'duration-seconds',
    description: 'Seconds from start to the manifest being written.',
    type: 'integer',
  }),
  'benchmark-passed': defineOutput({
    name: 'benchmark-passed',
    description:
      '`true`/`false`: the benchmark report of the metrics file against the thresholds; empty without metrics.',
    type: 'boolean',
  }),
  'endpoint-name': defineOutput({
    name: 'endpoint-name',
    description: 'deploy / endpoint-status / undeploy: the SageMaker endpoint.',
  }),
  'endpoint-status': defineOutput({
    name: 'endpoint-status',
    description: 'Status of the endpoint (InService, Failed, ...; Deleted after undeploy).',
  }),
  'endpoint-config': defineOutput({
    name: 'endpoint-config',
    description: 'Endpoint config the endpoint runs (deploy: the new one).',
  }),
} as const satisfies Record<string, OutputSpec>;

export type OutputName = keyof typeof OUTPUTS;

const BY_NAME: Record<string, OutputSpec | undefined> = OUTPUTS;

/** A command's outputs, by name from the one table. */
export function outputsOf(...names: OutputName[]): OutputSpec[] {
  return names.map((n) => OUTPUTS[n]);
}

/**
 * `--json` prints typed values: booleans, numbers, lists and objects instead of their text. An empty value
 * (e.g. benchmark-passed without metrics) is null; a value that does not parse stays the text it was.
 */
export function typedOutput(type: OutputType | undefined, value: string): unknown {
  if (type === undefined || type === 'string') return value;
  if (value === '') return null;
  if (type === 'boolean') return value === 'true' ? true : value === 'false' ? false : value;
  if (type === 'integer') return /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

/** The outputs of one command as `--json` prints them; names no spec knows stay strings. */
export function typedOutputs(
  specs: readonly OutputSpec[],
  outputs: Record<string, string>,
): Record<string, unknown> {
  const byName = new Map(specs.map((s) => [s.name, s]));
  return Object.fromEntries(
    Object.entries(outputs).map(([k, v]) => [k, typedOutput(byName.get(k)?.type ?? BY_NAME[k]?.type, v)]),
  );
}
