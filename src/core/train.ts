import * as path from 'node:path';
import { extractMetrics } from './benchmark';
import { UserError } from './errors';
import { manifestSchema, MANIFEST_FILE, MODEL_FILE, type Manifest, type ManifestFile } from './manifest';
import { shellQuote } from './shell-quote';
import type { StepRecord } from './steps';

/** The pure half of `train`: which steps run, which files come back, what the command line and manifest are. */

export const EMBEDDINGS_FILE = 'embeddings.zip';

export interface ArtifactSpec {
  /** Name in the model folder. */
  name: string;
  /** Path on the instance, relative to the copied repository. */
  remotePath: string;
  required: boolean;
}

/** model.zip (required), embeddings.zip and the metrics file (optional), all from the output folder. */
export function trainArtifacts(o: { outputDir: string; metricsFile?: string }): ArtifactSpec[] {
  const dir = o.outputDir.replace(/\/+$/, '') || '.';
  const at = (file: string): string => (dir === '.' ? file : path.posix.join(dir, file));
  const list: ArtifactSpec[] = [
    { name: MODEL_FILE, remotePath: at(MODEL_FILE), required: true },
    { name: EMBEDDINGS_FILE, remotePath: at(EMBEDDINGS_FILE), required: false },
  ];
  const metrics = o.metricsFile?.trim();
  if (metrics) {
    const name = path.posix.basename(metrics);
    if ([MODEL_FILE, EMBEDDINGS_FILE, MANIFEST_FILE].includes(name))
      throw new UserError(`metrics-file "${metrics}" would overwrite ${name} in the model folder`);
    list.push({ name, remotePath: metrics.includes('/') ? metrics : at(metrics), required: false });
  }
  return list;
}

const SAFE_PATH = /^[A-Za-z0-9_./-]+$/;

/** Paths we put on a remote command line and an rsync spec: plain characters only, no `..`. */
export function checkRelativePath(value: string, setting: string, allowAbsolute = false): string {
  const v = value.trim();
  if (v === '' || !SAFE_PATH.test(v) || v.split('/').includes('..'))
    throw new UserError(`${setting} "${value}" must be a plain path (letters, digits, _ . - /) without ".."`);
  if (!allowAbsolute && v.startsWith('/'))
    throw new UserError(`${setting} "${value}" must be a relative path`);
  return v;
}

export interface TrainCommandLine {
  repoDir: string;
  command: string;
  env: Record<string, string>;
}

/** `cd <repo> && export K=V … && <command>`: the training command sees where its inputs are. */
export function trainCommandLine(o: TrainCommandLine): string {
  const exports = Object.entries(o.env)
    .filter(([k]) => /^[A-Z_][A-Z0-9_]*$/.test(k))
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`);
  return [`cd ${shellQuote(o.repoDir)}`, ...exports, o.command].join(' && ');
}

export type TrainStepId =
  | 'check-store'
  | 'launch'
  | 'wait-running'
  | 'wait-ssh'
  | 'push-code'
  | 'push-data'
  | 'train'
  | 'collect'
  | 'manifest'
  | 'terminate';

export interface TrainStep {
  id: TrainStepId;
  title: string;
}

/** The steps of one run, in order, for numbered progress lines. */
export function planTrainSteps(o: { dataKey?: string; backend: string }): TrainStep[] {
  const steps: TrainStep[] = [
    { id: 'check-store', title: 'check the model folder and inputs in the store' },
    { id: 'launch', title: o.backend === 'local' ? 'create a local work folder' : 'launch the instance' },
    { id: 'wait-running', title: 'wait until it runs' },
    { id: 'wait-ssh', title: o.backend === 'local' ? 'check the work folder' : 'wait for SSH' },
    { id: 'push-code', title: 'copy the repository' },
  ];
  if (o.dataKey) steps.push({ id: 'push-data', title: `bring ${o.dataKey}` });
  steps.push(
    { id: 'train', title: 'run the training command' },
    { id: 'collect', title: 'upload the artifacts' },
    { id: 'manifest', title: 'write the manifest' },
    { id: 'terminate', title: o.backend === 'local' ? 'remove the work folder' : 'terminate the instance' },
  );
  return steps;
}

/** A key pair name unique per run, within EC2's 255 characters and readable in the console. */
export function ephemeralKeyName(modelFolder: string, random: string): string {
  const base = `model-pipeline-${modelFolder}`.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 200);
  return `${base}-${random}`;
}

export interface ManifestInput {
  model: { name: string; version: string; sha: string };
  files: ManifestFile[];
  config: { path: string; sha256: string };
  inputs?: { key: string; sha256?: string; size?: number }[];
  git: { sha: string; branch?: string; repository?: string };
  build: {
    backend: string;
    ami?: string;
    instanceType?: string;
    instanceId?: string;
    startedAt: Date;
    finishedAt: Date;
    runUrl?: string;
    actor?: string;
  };
  /** Content of the metrics file, when there was one. */
  metrics?: { file: string; text: string };
  /** The benchmark report's verdict (wins over a `passed` key in the metrics file) and its JUnit report file. */
  benchmark?: { passed: boolean; report?: string };
  /** `model-sources` path -> git object hash at the commit. */
  sources?: Record<string, string>;
  /** The config's steps, when it has a pipeline. */
  steps?: StepRecord[];
}

/** Numeric metrics of a metrics file's text; undefined when it is not JSON. */
function metricValues(text: string): Record<string, number> | undefined {
  try {
    return Object.fromEntries(extractMetrics(JSON.parse(text)));
  } catch {
    return undefined;
  }
}

/** `passed` of a metrics file, when it says so (`{"passed": true}`); otherwise nothing is claimed. */
export function benchmarkVerdict(text: string): boolean | undefined {
  try {
    const raw = JSON.parse(text) as unknown;
    if (raw && typeof raw === 'object' && typeof (raw as { passed?: unknown }).passed === 'boolean')
      return (raw as { passed: boolean }).passed;
  } catch {
    // not JSON: kept as a file, no verdict
  }
  return undefined;
}

/** The manifest, validated against the schema readers use, so we never write one they would reject. */
export function buildTrainManifest(i: ManifestInput): Manifest {
  const names = new Set<string>();
  for (const f of i.files) {
    if (names.has(f.name)) throw new Error(`file ${f.name} listed twice in the manifest`);
    names.add(f.name);
  }
  if (!names.has(MODEL_FILE)) throw new Error(`a manifest without ${MODEL_FILE} describes no model`);
  const passed = i.benchmark?.passed ?? (i.metrics ? benchmarkVerdict(i.metrics.text) : undefined);
  const values = i.metrics ? metricValues(i.metrics.text) : undefined;
  const manifest = {
    schemaVersion: 1 as const,
    model: i.model,
    files: [...i.files].sort((a, b) => a.name.localeCompare(b.name)),
    config: i.config,
    ...(i.inputs && i.inputs.length > 0 ? { inputs: i.inputs } : {}),
    git: dropUndefined(i.git),
    build: dropUndefined({
      ...i.build,
      startedAt: i.build.startedAt.toISOString(),
      finishedAt: i.build.finishedAt.toISOString(),
    }),
    ...(i.sources && Object.keys(i.sources).length > 0 ? { sources: i.sources } : {}),
    ...(i.metrics && values ? { metrics: { file: i.metrics.file, values } } : {}),
    ...(passed !== undefined
      ? {
          benchmark: dropUndefined({ passed, file: i.metrics?.file, report: i.benchmark?.report }),
        }
      : {}),
    ...(i.steps && i.steps.length > 0 ? { steps: i.steps } : {}),
  };
  return manifestSchema.parse(manifest);
}

function dropUndefined<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as T;
}

export function durationSeconds(start: Date, end: Date): number {
  return Math.max(0, Math.round((end.getTime() - start.getTime()) / 1000));
}

/** Where the big files travel: through the runner (default), or straight between the instance and S3. */
export type TransferMode = 'runner' | 'instance';

const REPORT = 'MP-FILE';
/** Exit code of an instance-side upload whose file is not there (so optional files can be skipped). */
export const MISSING_EXIT = 44;

function endpointFlag(endpoint: string | undefined): string {
  return endpoint ? ` --endpoint-url ${shellQuote(endpoint)}` : '';
}

function reportLine(file: string, name: string): string {
  return `printf '${REPORT} %s %s %s\\n' "$(sha256sum < ${shellQuote(file)} | cut -d' ' -f1)" "$(stat -c %s ${shellQuote(file)})" ${shellQuote(name)}`;
}

/** Instance side: download an object with the aws CLI, then report its hash and size. */
export function instanceFetchCommand(o: {
  aws: string;
  uri: string;
  dest: string;
  endpoint?: string;
}): string {
  return [
    `${o.aws} s3 cp --only-show-errors${endpointFlag(o.endpoint)} ${shellQuote(o.uri)} ${shellQuote(o.dest)}`,
    reportLine(o.dest, path.posix.basename(o.dest)),
  ].join(' && ');
}

/** Instance side: report a file's hash and size, then upload it; exits MISSING_EXIT when it is absent. */
export function instanceUploadCommand(o: {
  aws: string;
  file: string;
  name: string;
  uri: string;
  endpoint?: string;
}): string {
  return [
    `{ test -f ${shellQuote(o.file)} || exit ${MISSING_EXIT}; }`,
    reportLine(o.file, o.name),
    `${o.aws} s3 cp --only-show-errors${endpointFlag(o.endpoint)} ${shellQuote(o.file)} ${shellQuote(o.uri)}`,
  ].join(' && ');
}

const HAVE = 'MP-HAVE';

/**
 * One remote command telling which of the given files exist: an `MP-HAVE <size> <path>` line for each
 * regular file (`wc -c`, so it runs on GNU and BSD alike), nothing for a missing one; exit 0 either way.
 */
export function existingFilesCommand(paths: readonly string[]): string {
  if (paths.length === 0) return 'true';
  return `for f in ${paths.map(shellQuote).join(' ')}; do if [ -f "$f" ]; then printf '${HAVE} %s %s\\n' "$(wc -c < "$f" | tr -d ' ')" "$f"; fi; done`;
}

/** Path -> size of the files existingFilesCommand reported; other output lines are ignored. */
export function parseExistingFiles(lines: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of lines) {
    const m = /^MP-HAVE (\d+) (.+)$/.exec(line.trim());
    if (m) out.set(m[2], Number(m[1]));
  }
  return out;
}

/** The `MP-FILE <sha256> <size> <name>` lines of instance-side transfers. */
export function parseFileReports(lines: string[]): Map<string, { sha256: string; size: number }> {
  const out = new Map<string, { sha256: string; size: number }>();
  for (const line of lines) {
    const m = /^MP-FILE ([0-9a-f]{64}) (\d+) (.+)$/.exec(line.trim());
    if (m) out.set(m[3], { sha256: m[1], size: Number(m[2]) });
  }
  return out;
}
