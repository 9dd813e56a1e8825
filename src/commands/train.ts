import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_EXCLUDES } from '../adapters/ssh/argv';
import { ciRunOf } from '../core/ci-env';
import { formatDuration } from '../core/duration';
import { messageOf, PipelineError, PreconditionFailedError, UserError } from '../core/errors';
import { parseHostKeyOption } from '../core/host-keys';
import { trainInstanceTags } from '../core/instance-tags';
import { MANIFEST_FILE } from '../core/manifest';
import type { HostSession, HostSpec, ObjectStore } from '../core/ports';
import { parseSteps, type StepGraph } from '../core/steps';
import {
  buildTrainManifest,
  checkRelativePath,
  durationSeconds,
  planTrainSteps,
  trainArtifacts,
  trainCommandLine,
  type TrainStepId,
} from '../core/train';
import { readAmiVersion } from './ami-version';
import { trainBenchmarkReport } from './benchmark-report';
import { acquireFolderLease, runLabel, type HeldLease } from './folder-lease';
import { uploadManifestFile } from './manifest-upload';
import {
  FORCE_OPTION,
  loadTargets,
  MODEL_SOURCES_OPTION,
  resolveSha,
  type ModelTarget,
} from './model-context';
import { outputsOf } from './output-specs';
import { THRESHOLDS_OPTION } from './registry-context';
import { SAGEMAKER_TRAIN_OPTIONS } from './sagemaker-options';
import { sagemakerCleanup, sagemakerEngine } from './train-sagemaker-wiring';
import { checkTrainTarget, clearFolderHoldingLease } from './train-guards';
import { readSshCidr, sshCidrsFor } from './ssh-ingress';
import type { SshCidrSetting } from '../core/ssh-ingress';
import { TRAIN_OPTIONS } from './train-options';
import { REPO_OPTIONS, STORE_OPTIONS } from './common-options';
import {
  checkStepInputs,
  mergedJunit,
  runTrainSteps,
  STEP_OPTIONS,
  stepsMarkdown,
  type StepsOutcome,
} from './train-steps';
import {
  artifactTransfer,
  type ArtifactTransfer,
  type InputRecord,
  type TransferScope,
  type Uploaded,
} from './train-transfer';
import type { CommandContext, CommandDef, CommandResult } from './types';

const BENCHMARK_XML = 'benchmark_results.xml';

/**
 * `none` turns off a setting that has a default: the Actions runner passes an unset input as '', so an
 * empty value cannot mean "none" there.
 */
function optionalSetting(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v && v.toLowerCase() !== 'none' ? v : undefined;
}

interface Settings {
  trainCommand: string;
  trainTimeout: number;
  bootTimeout: number;
  maxRuntime: number;
  dataKey?: string;
  outputDir: string;
  metricsFile?: string;
  remoteDir: string;
  excludes: string[];
  sshCidr: SshCidrSetting;
}

/** Every setting checked before anything is launched: a typo must cost nothing. */
function readSettings(ctx: CommandContext): Settings {
  const o = ctx.options;
  const outputDir = checkRelativePath(o.string('output-dir'), 'output-dir');
  const metricsOption = optionalSetting(o.string('metrics-file'));
  const metricsFile = metricsOption ? checkRelativePath(metricsOption, 'metrics-file') : '';
  return {
    trainCommand: o.string('train-command'),
    trainTimeout: o.duration('train-timeout'),
    bootTimeout: o.duration('boot-timeout'),
    maxRuntime: o.duration('max-runtime'),
    dataKey: optionalSetting(o.string('data-key')),
    outputDir,
    metricsFile: metricsFile ? path.posix.join(outputDir, metricsFile) : undefined,
    remoteDir: checkRelativePath(o.string('remote-dir'), 'remote-dir', true),
    excludes: [...DEFAULT_EXCLUDES, ...o.list('sync-excludes')],
    sshCidr: readSshCidr(ctx),
  };
}

/** A folder store inside the repository is never copied to the instance with the code. */
function storeExcludes(store: ObjectStore, cwd: string): string[] {
  const root = store.uri('');
  if (!root.startsWith('file://')) return [];
  const rel = path.relative(cwd, fileURLToPath(root));
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? ['/' + rel.split(path.sep).join('/')] : [];
}

/** What a run trains, and how, settled before the lease is taken. */
interface TrainPlan {
  s: Settings;
  target: ModelTarget;
  /** The config relative to the repository, as the training command sees it. */
  configRel: string;
  graph?: StepGraph;
  sources?: Readonly<Record<string, string>>;
  transfer: ArtifactTransfer;
  startedAt: Date;
  git: { sha: string; branch?: string };
  /** Port 22 of the instance opens to these for the run (ssh-cidr; `auto` already looked up). */
  sshCidrs?: string[];
  /** Logs the numbered line of a step. */
  step(id: TrainStepId): void;
}

/** The one model this run trains, its settings and checks: everything that can fail before a lease. */
async function planTraining(ctx: CommandContext): Promise<TrainPlan> {
  const log = ctx.deps.logger;
  const startedAt = ctx.deps.clock.now();
  const s = readSettings(ctx);
  const { targets } = await loadTargets(ctx);
  if (targets.length !== 1) {
    throw new UserError(
      `train builds one model per run, but config-path matches ${targets.length} configs; run it once per model (the needs-model matrix output lists them)`,
    );
  }
  const target = targets[0];
  const configRel = path.relative(ctx.deps.cwd, path.resolve(ctx.deps.cwd, target.config.path));
  if (configRel.startsWith('..') || path.isAbsolute(configRel))
    throw new UserError(`config ${target.config.path} must be inside the repository (${ctx.deps.cwd})`);

  // a pipeline of steps in the config: checked as a graph before anything launches
  const graph = parseSteps(target.config.values.steps, target.config.path);
  const steps = planTrainSteps({ dataKey: s.dataKey, backend: ctx.deps.hosts().backend });
  const step = (id: TrainStepId): void => {
    const i = steps.findIndex((x) => x.id === id);
    if (i >= 0) log.info(`[${i + 1}/${steps.length}] ${steps[i].title}`);
  };

  step('check-store');
  const store = ctx.deps.store();
  const transfer = artifactTransfer(ctx.options.string('transfer'), store, {
    aws: ctx.options.string('instance-aws-command'),
    s3Endpoint: ctx.options.string('s3-endpoint') || undefined,
    timeoutSeconds: s.maxRuntime,
  });
  const query = await checkTrainTarget(ctx, store, target, s.dataKey);
  if (graph) await checkStepInputs(graph, store, target.config.path);
  s.excludes.push(...storeExcludes(store, ctx.deps.cwd));
  const sha = await resolveSha(ctx);
  const branch = ctx.deps.ci.branch ?? (await ctx.deps.git.currentBranch().catch(() => undefined));
  const git = { sha, branch };
  const sshCidrs = await sshCidrsFor(ctx, s.sshCidr);
  const sources = query.inputs.sources;
  return { s, target, configRel, graph, sources, transfer, startedAt, git, sshCidrs, step };
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const engine = sagemakerEngine(ctx);
  if (engine) return engine();
  const plan = await planTraining(ctx);
  const store = ctx.deps.store();
  const log = ctx.deps.logger;
  // the lease comes before anything in the folder is touched: a live run's uploads are not leftovers
  const lease = await acquireFolderLease(
    store,
    ctx.deps.clock,
    log,
    plan.target.prefix,
    runLabel(ctx.deps.ci),
  );
  try {
    // losing the lease stops the run like a cancellation does
    return await trainHoldingLease(
      { ...ctx, signal: AbortSignal.any([ctx.signal, lease.lost]) },
      plan,
      lease,
    );
  } finally {
    await lease
      .release()
      .catch((err) => log.warn(`could not release the lease ${store.uri(lease.key)}: ${messageOf(err)}`));
  }
}

async function trainHoldingLease(
  ctx: CommandContext,
  plan: TrainPlan,
  lease: HeldLease,
): Promise<CommandResult> {
  const log = ctx.deps.logger;
  await clearFolderHoldingLease(ctx.deps.store(), plan.target.prefix, log);
  const uploads: Uploaded[] = [];
  const work = await fs.mkdtemp(path.join(tmpdir(), 'mp-train-'));
  let host: HostSession | undefined;
  let result: CommandResult;
  try {
    host = await ctx.deps.hosts().acquire(hostSpec(ctx, plan), ctx.signal);
    result = await trainOnHost(ctx, plan, lease, host, work, uploads);
  } catch (err) {
    await discardUploads(ctx, plan.target.prefix, lease, uploads);
    await host?.release().catch((problem: unknown) => log.error(messageOf(problem)));
    throw explain(ctx, lease, err, host?.instance.id);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  // the model stands, but an instance that could not be terminated fails the step
  await host.release();
  return result;
}

/** The host this run asks for: the launch as the options give it, and how to reach the instance. */
function hostSpec(ctx: CommandContext, plan: TrainPlan): HostSpec {
  const o = ctx.options;
  const { target, s } = plan;
  const pinned = o.string('ssh-host-key');
  return {
    launch: {
      imageId: o.string('ami-id') ?? '',
      instanceTypes: o.list('instance-types'),
      subnetIds: o.list('subnet-id'),
      securityGroupIds: o.list('security-group-id'),
      spot: o.bool('spot'),
      rootVolumeGiB: o.int('root-volume-gib'),
      maxRuntimeSeconds: s.maxRuntime,
      tags: trainInstanceTags({
        modelPrefix: target.prefix,
        repo: ctx.deps.ci.repository,
        runUrl: ctx.deps.ci.runUrl,
        ci: { run: ciRunOf(ctx.deps.ci), attempt: ctx.deps.ci.runAttempt, job: ctx.deps.ci.job },
      }),
      instanceProfile: o.string('instance-profile') || undefined,
      sshCidrs: plan.sshCidrs,
    },
    targets: async () => ({
      amiId: o.string('ami-id') || undefined,
      amiVersion: (await readAmiVersion(ctx, 'optional'))?.version,
      amiNamePattern: o.string('ami-name-pattern') || undefined,
      subnetIds: o.list('subnet-id'),
      subnetCidrs: o.list('subnet-cidr'),
      securityGroupIds: o.list('security-group-id'),
      securityGroupNames: o.list('security-group-name'),
    }),
    modelName: target.id.name,
    modelPrefix: target.prefix,
    keyName: o.string('key-name') || undefined,
    privateKey: o.string('ssh-private-key') || undefined,
    pinnedHostKeys: pinned ? parseHostKeyOption(pinned) : undefined,
    bootTimeoutSeconds: s.bootTimeout,
    onStep: plan.step,
  };
}

/** Code and data onto the host, the training, the outputs into the store, the manifest last. */
async function trainOnHost(
  ctx: CommandContext,
  plan: TrainPlan,
  lease: HeldLease,
  host: HostSession,
  work: string,
  uploads: Uploaded[],
): Promise<CommandResult> {
  const { s, step } = plan;
  const scope: TransferScope = {
    store: ctx.deps.store(),
    shell: host.shell,
    instanceId: host.instance.id,
    remoteDir: s.remoteDir,
    work,
    signal: ctx.signal,
    log: ctx.deps.logger,
  };
  step('push-code');
  await host.shell.pushDir(ctx.deps.cwd, s.remoteDir, s.excludes, ctx.signal);
  const input = await pushData(plan, scope);
  step('train');
  const stepsOutcome = await runTraining(ctx, plan, host, work, input?.name ?? '');
  step('collect');
  const artifacts = trainArtifacts({ outputDir: s.outputDir, metricsFile: s.metricsFile });
  const plannedArtifacts = { artifacts, metricsPath: s.metricsFile, prefix: plan.target.prefix };
  const { metricsLocal } = await plan.transfer.collect(scope, plannedArtifacts, uploads);
  const benchmark = await reportBenchmark(ctx, plan, metricsLocal, stepsOutcome, work, uploads);
  await uploadConfig(ctx, plan.target, uploads);
  const metricsText = metricsLocal ? await fs.readFile(metricsLocal, 'utf8') : undefined;
  step('manifest');
  // proof, right before the model becomes complete, that the folder is still this run's
  await lease.confirm();
  const finishedAt = await writeManifest(ctx, plan, host, uploads, {
    inputs: input ? [input.record] : [],
    metricsText,
    benchmark,
    stepsOutcome,
  });
  return trainResult(ctx, plan, host, uploads, finishedAt, benchmark, stepsOutcome);
}

/** The data object onto the host, when the run has one. */
async function pushData(
  plan: TrainPlan,
  scope: TransferScope,
): Promise<{ name: string; record: InputRecord } | undefined> {
  const key = plan.s.dataKey;
  if (!key) return undefined;
  plan.step('push-data');
  const name = path.posix.basename(key);
  const record = await plan.transfer.pushInput(scope, key, path.posix.join(plan.s.remoteDir, name));
  return { name, record };
}

/** The config's steps, or its one training command; a failed command fails the run. */
async function runTraining(
  ctx: CommandContext,
  plan: TrainPlan,
  host: HostSession,
  work: string,
  dataName: string,
): Promise<StepsOutcome | undefined> {
  const { s, target } = plan;
  const log = ctx.deps.logger;
  const env = {
    MODEL_PIPELINE_CONFIG: plan.configRel.split(path.sep).join('/'),
    MODEL_PIPELINE_DATA: dataName,
    MODEL_PIPELINE_OUTPUT_DIR: s.outputDir,
    MODEL_PIPELINE_MODEL_VERSION: target.id.version,
    MODEL_PIPELINE_MODEL_SHA: target.id.sha7,
    MODEL_PIPELINE_MODEL_PREFIX: target.prefix,
  };
  if (plan.graph)
    return runTrainSteps(ctx, {
      graph: plan.graph,
      shell: host.shell,
      repoDir: s.remoteDir,
      env,
      work,
      timeoutSeconds: s.trainTimeout,
    });
  log.info(`$ ${s.trainCommand}`);
  const command = trainCommandLine({ repoDir: s.remoteDir, command: s.trainCommand, env });
  const trainStart = Date.now();
  const exec = await host.shell.exec(command, {
    timeoutSeconds: s.trainTimeout,
    signal: ctx.signal,
    onOutput: (line) => log.info(line),
  });
  if (exec.exitCode !== 0)
    throw new PipelineError(
      `training command "${s.trainCommand}" failed with exit code ${exec.exitCode} on ${host.instance.id} after ${formatDuration((Date.now() - trainStart) / 1000)}; see its output above. No model was written.`,
    );
  return undefined;
}

interface Benchmark {
  passed: boolean;
  xmlFile?: string;
  summary?: string;
}

/** The benchmark report (metrics against thresholds) joined by the validate steps' JUnit, stored with the model. */
async function reportBenchmark(
  ctx: CommandContext,
  plan: TrainPlan,
  metricsLocal: string | undefined,
  stepsOutcome: StepsOutcome | undefined,
  work: string,
  uploads: Uploaded[],
): Promise<Benchmark | undefined> {
  let benchmark = metricsLocal
    ? await trainBenchmarkReport(ctx, plan.target.prefix, metricsLocal, work)
    : undefined;
  if (stepsOutcome && stepsOutcome.junit.length > 0) {
    // the validate steps' JUnit joins the benchmark report (or is the report when there are no metrics)
    const xmlFile = path.join(work, 'out', BENCHMARK_XML);
    const base = benchmark?.xmlFile ? await fs.readFile(benchmark.xmlFile, 'utf8') : undefined;
    await fs.mkdir(path.dirname(xmlFile), { recursive: true });
    await fs.writeFile(xmlFile, await mergedJunit(base, stepsOutcome));
    const reportDir = ctx.options.string('report-dir');
    if (reportDir) {
      const dir = path.resolve(ctx.deps.cwd, reportDir);
      await fs.mkdir(dir, { recursive: true });
      await fs.copyFile(xmlFile, path.join(dir, BENCHMARK_XML));
    }
    benchmark = { passed: benchmark?.passed ?? true, xmlFile, summary: benchmark?.summary };
  }
  if (benchmark?.xmlFile) {
    const key = plan.target.prefix + BENCHMARK_XML;
    uploads.push(await uploadManifestFile(ctx.deps.store(), key, benchmark.xmlFile, BENCHMARK_XML));
  }
  return benchmark;
}

/** The config file goes with the model, unless the training already stored one of that name. */
async function uploadConfig(ctx: CommandContext, target: ModelTarget, uploads: Uploaded[]): Promise<void> {
  const configName = path.basename(target.config.path);
  if (uploads.some((u) => u.entry.name === configName)) return;
  const configFile = path.resolve(ctx.deps.cwd, target.config.path);
  uploads.push(
    await uploadManifestFile(ctx.deps.store(), target.prefix + configName, configFile, configName),
  );
}

/** The create-only manifest that makes the folder a model; resolves with the finishing time it records. */
async function writeManifest(
  ctx: CommandContext,
  plan: TrainPlan,
  host: HostSession,
  uploads: Uploaded[],
  o: {
    inputs: InputRecord[];
    metricsText?: string;
    benchmark?: Benchmark;
    stepsOutcome?: StepsOutcome;
  },
): Promise<Date> {
  const { target, s } = plan;
  const { sha, branch } = plan.git;
  const finishedAt = ctx.deps.clock.now();
  const manifest = buildTrainManifest({
    model: { name: target.modelName ?? target.id.name, version: target.id.version, sha },
    files: uploads.map((u) => u.entry),
    config: { path: target.config.path, sha256: target.config.hash },
    inputs: o.inputs,
    git: { sha, branch, repository: ctx.deps.ci.repository },
    build: {
      backend: ctx.deps.hosts().backend,
      ami: host.instance.imageId,
      instanceType: host.instance.instanceType,
      instanceId: host.instance.id,
      startedAt: plan.startedAt,
      finishedAt,
      runUrl: ctx.deps.ci.runUrl,
      actor: ctx.deps.ci.actor,
    },
    metrics:
      o.metricsText !== undefined
        ? { file: path.posix.basename(s.metricsFile!), text: o.metricsText }
        : undefined,
    benchmark: o.benchmark && {
      passed: o.benchmark.passed,
      report: o.benchmark.xmlFile ? BENCHMARK_XML : undefined,
    },
    sources: plan.sources,
    steps: o.stepsOutcome?.records,
  });
  try {
    await ctx.deps.store().put(target.prefix + MANIFEST_FILE, JSON.stringify(manifest, null, 2) + '\n', {
      ifNoneMatch: true,
      contentType: 'application/json',
    });
  } catch (err) {
    if (err instanceof PreconditionFailedError) {
      uploads.length = 0; // the folder belongs to the run that won: leave it alone
      throw new PipelineError(`another run completed ${target.prefix} at the same time; its model stands`);
    }
    throw err;
  }
  return finishedAt;
}

function trainResult(
  ctx: CommandContext,
  plan: TrainPlan,
  host: HostSession,
  uploads: Uploaded[],
  finishedAt: Date,
  benchmark: Benchmark | undefined,
  stepsOutcome: StepsOutcome | undefined,
): CommandResult {
  const { target } = plan;
  const uri = ctx.deps.store().uri(target.prefix);
  const { id, instanceType } = host.instance;
  ctx.deps.logger.info(`model complete: ${uri}`);
  const seconds = durationSeconds(plan.startedAt, finishedAt);
  return {
    outputs: {
      'instance-id': id,
      'model-prefix': target.prefix,
      'model-uri': uri,
      'duration-seconds': String(seconds),
      'benchmark-passed': benchmark ? String(benchmark.passed) : '',
    },
    summary:
      `### train: ${target.prefix}\n\n` +
      `| | |\n| --- | --- |\n| model | \`${uri}\` |\n| instance | ${id} (${instanceType ?? ctx.deps.hosts().backend}) |\n` +
      `| files | ${uploads.map((u) => u.entry.name).join(', ')} |\n| duration | ${formatDuration(seconds)} |\n` +
      (stepsOutcome ? `\n#### steps\n\n${stepsMarkdown(stepsOutcome.rows)}\n` : '') +
      (benchmark?.summary ? `\n${benchmark.summary}\n` : ''),
    text: `model ${target.prefix} trained in ${formatDuration(seconds)}: ${uri}`,
  };
}

/** A failed run removes what it uploaded, unless it lost the lease: then the files are the new holder's. */
async function discardUploads(
  ctx: CommandContext,
  prefix: string,
  lease: HeldLease,
  uploads: Uploaded[],
): Promise<void> {
  const log = ctx.deps.logger;
  if (uploads.length === 0) return;
  if (lease.lost.aborted) {
    log.warn(`the lease on ${prefix} was lost: its files now belong to the run holding it; left alone`);
    return;
  }
  const store = ctx.deps.store();
  try {
    await store.deleteMany(uploads.map((u) => u.key));
    log.info(`removed the ${uploads.length} file(s) this failed run had uploaded`);
  } catch (err) {
    log.warn(
      `could not remove partial uploads under ${store.uri(prefix)} (no manifest, so not a model): ${messageOf(err)}`,
    );
  }
}

/** An interrupted run says so, and what it left behind; other failures pass through unchanged. */
function explain(
  ctx: CommandContext,
  lease: HeldLease,
  err: unknown,
  instanceId: string | undefined,
): unknown {
  if (lease.lost.aborted && !(err instanceof UserError)) return lease.lost.reason as unknown;
  if (!ctx.signal.aborted || err instanceof UserError) return err;
  const reason = ctx.signal.reason instanceof Error ? ctx.signal.reason.message : 'cancelled';
  return new PipelineError(
    `train interrupted (${reason})${instanceId ? `: instance ${instanceId} terminated` : ''}; no model was written`,
  );
}

/** The post step: the instance and key pair of a run that could not clean up itself (cancelled, crashed). */
async function cleanup(ctx: CommandContext): Promise<void> {
  await sagemakerCleanup(ctx);
  await ctx.deps.hosts().releaseFromState();
}

export const trainCommand: CommandDef = {
  name: 'train',
  summary: 'Train one model on a temporary instance (EC2, or a local folder) and store it with its manifest.',
  options: [
    ...STORE_OPTIONS,
    ...REPO_OPTIONS,
    ...TRAIN_OPTIONS,
    THRESHOLDS_OPTION,
    MODEL_SOURCES_OPTION,
    FORCE_OPTION,
    ...STEP_OPTIONS,
    ...SAGEMAKER_TRAIN_OPTIONS,
  ],
  outputs: outputsOf('instance-id', 'model-prefix', 'model-uri', 'duration-seconds', 'benchmark-passed'),
  run,
  cleanup,
};
