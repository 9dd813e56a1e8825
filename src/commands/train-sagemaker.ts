import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DEFAULT_EXCLUDES } from '../adapters/ssh/argv';
import { formatDuration } from '../core/duration';
import { messageOf, PipelineError, PreconditionFailedError, UserError } from '../core/errors';
import { MANIFEST_FILE, type ManifestFile } from '../core/manifest';
import {
  buildTrainingJobRequest,
  hyperparametersFrom,
  isTerminal,
  runTags,
  sagemakerKeys,
  statusTransition,
  trainingJobName,
  type SageMaker,
  type TrainingJobInfo,
  type TrainingJobRequest,
} from '../core/sagemaker';
import { buildTrainManifest, checkRelativePath, durationSeconds, trainArtifacts } from '../core/train';
import { LogFollower, type TrainingLogs } from '../core/training-logs';
import { ciRunOf } from '../core/ci-env';
import { formatCiRun, PIPELINE_TAG, TAG_CI_ATTEMPT, TAG_CI_JOB, TAG_CI_RUN } from '../core/instance-tags';
import { loadTargets, resolveSha, type ModelTarget } from './model-context';
import { storeRoot } from './registry-context';
import { uploadManifestFile } from './manifest-upload';
import { trainBenchmarkReport } from './benchmark-report';
import { BENCHMARK_XML } from '../core/benchmark';
import { checkTrainTarget, clearFolderHoldingLease } from './train-guards';
import { parseSteps } from '../core/steps';
import { acquireFolderLease, runLabel } from './folder-lease';
import type { CommandContext, CommandResult } from './types';

/** State name the post step reads to stop a job the run could not stop itself. */
export const STATE_TRAINING_JOB = 'sagemaker-training-job';

/** The training job's lifecycle as an engine of `train`: request, source archive, job, outputs, manifest. */

function optionalSetting(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v && v.toLowerCase() !== 'none' ? v : undefined;
}

function tar(args: string[], cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new PipelineError(`tar ${args[0]} failed (${code}): ${err.trim()}`)),
    );
  });
}

/** The marker and CI run tags `sweep` finds a run's training jobs by (the same keys as on instances). */
export function jobOwnerTags(ctx: CommandContext): Record<string, string> {
  const ci = ctx.deps.ci;
  const run = ciRunOf(ci);
  return {
    [PIPELINE_TAG]: 'true',
    ...(run ? { [TAG_CI_RUN]: formatCiRun(run) } : {}),
    ...(ci.runAttempt ? { [TAG_CI_ATTEMPT]: ci.runAttempt } : {}),
    ...(ci.job ? { [TAG_CI_JOB]: ci.job } : {}),
  };
}

/** The request, validated, before anything is created: a typo must cost nothing. */
export function trainingJobRequest(
  ctx: CommandContext,
  target: ModelTarget,
  o: { jobName: string; storeUri: (key: string) => string; configRel: string },
): TrainingJobRequest {
  const opt = ctx.options;
  const keys = sagemakerKeys(storeRoot(ctx), target.prefix, o.jobName);
  const dataKey = optionalSetting(opt.string('data-key'));
  return buildTrainingJobRequest({
    jobName: o.jobName,
    image: opt.string('sagemaker-image') ?? '',
    role: opt.string('sagemaker-role') ?? '',
    instanceType: opt.string('sagemaker-instance-type'),
    instanceCount: opt.int('sagemaker-instance-count'),
    volumeGiB: opt.int('sagemaker-volume-gib'),
    spot: opt.bool('spot'),
    maxWaitSeconds: opt.duration('max-wait'),
    maxRuntimeSeconds: opt.duration('max-runtime'),
    hyperparameters: hyperparametersFrom(target.config.values, opt.require('hyperparameters-table')),
    dataUri: dataKey ? o.storeUri(dataKey) : undefined,
    sourceUri: o.storeUri(keys.source),
    checkpointUri: o.storeUri(keys.checkpoints),
    outputUri: o.storeUri(keys.output),
    environment: {
      MODEL_PIPELINE_TRAIN_COMMAND: opt.require('train-command'),
      MODEL_PIPELINE_CONFIG: o.configRel,
      MODEL_PIPELINE_MODEL_VERSION: target.id.version,
      MODEL_PIPELINE_MODEL_SHA: target.id.sha7,
      MODEL_PIPELINE_MODEL_PREFIX: target.prefix,
    },
    tags: runTags({
      modelPrefix: target.prefix,
      repo: ctx.deps.ci.repository,
      runUrl: ctx.deps.ci.runUrl,
      extra: jobOwnerTags(ctx),
    }),
  });
}

/** After a job ends, its log is polled again (up to this many times, this far apart) while lines still arrive. */
const LOG_DRAIN_POLLS = 3;
const LOG_DRAIN_PAUSE_MS = 5_000;

/**
 * Polls the job until it ends, logging each status transition and the training log's new lines (when
 * `logs` is given); an aborted run stops the job. Resolves with the final state; Completed is the only
 * success.
 */
export async function waitForTrainingJob(
  ctx: CommandContext,
  sm: SageMaker,
  name: string,
  pollMs: number,
  logs?: TrainingLogs,
): Promise<TrainingJobInfo> {
  let previous: TrainingJobInfo | undefined;
  // a read cut by the run's own abort is no news: the job is being stopped
  const follower =
    logs &&
    new LogFollower(logs, name, (line) => {
      if (!ctx.signal.aborted) ctx.deps.logger.warn(line);
    });
  /** Prints the lines that arrived since the last poll; says how many. */
  const follow = async (): Promise<number> => {
    const lines = (await follower?.poll()) ?? [];
    for (const line of lines) ctx.deps.logger.info(line);
    return lines.length;
  };
  for (;;) {
    if (ctx.signal.aborted) {
      ctx.deps.logger.warn(`stopping training job ${name}`);
      await sm.stopTrainingJob(name);
      const reason = ctx.signal.reason instanceof Error ? ctx.signal.reason.message : 'cancelled';
      throw new PipelineError(
        `train interrupted (${reason}): training job ${name} stopped; no model was written`,
      );
    }
    const now = await sm.describeTrainingJob(name);
    if (!now) throw new PipelineError(`training job ${name} disappeared`);
    const line = statusTransition(previous, now);
    if (line) ctx.deps.logger.info(line);
    previous = now;
    // after the status, so the last lines of a finished job come before the run goes on
    await follow();
    if (isTerminal(now.status)) {
      // CloudWatch Logs takes the container's last lines (a failure's traceback) some seconds after the job
      // ends: poll again after a pause, and again while a poll still brings lines (as the SageMaker SDK does)
      for (let more = 1, polls = 0; follower && more > 0 && polls < LOG_DRAIN_POLLS; polls++) {
        await ctx.deps.clock.sleep(Math.min(pollMs, LOG_DRAIN_PAUSE_MS), ctx.signal).catch(() => undefined);
        if (ctx.signal.aborted) break;
        more = await follow();
      }
      return now;
    }
    await ctx.deps.clock.sleep(pollMs, ctx.signal).catch(() => undefined);
  }
}

/** `train` on a SageMaker training job (or the local run of its contract). */
export async function trainOnSageMaker(
  ctx: CommandContext,
  sm: SageMaker,
  logs?: TrainingLogs,
): Promise<CommandResult> {
  const log = ctx.deps.logger;
  const startedAt = ctx.deps.clock.now();
  const { targets } = await loadTargets(ctx);
  if (targets.length !== 1)
    throw new UserError(
      `train builds one model per run, but config-path matches ${targets.length} configs; run it once per model`,
    );
  const target = targets[0];
  const configRel = path.relative(ctx.deps.cwd, path.resolve(ctx.deps.cwd, target.config.path));
  if (configRel.startsWith('..') || path.isAbsolute(configRel))
    throw new UserError(`config ${target.config.path} must be inside the repository (${ctx.deps.cwd})`);
  if (parseSteps(target.config.values.steps, target.config.path))
    throw new UserError(
      `${target.config.path} defines steps, which run on the instance engine (EC2 or local); the SageMaker engine runs one train-command: remove train-engine sagemaker, or the steps`,
    );
  const metricsOption = optionalSetting(ctx.options.string('metrics-file'));
  const metricsFile = metricsOption ? checkRelativePath(metricsOption, 'metrics-file') : undefined;
  const pollMs = ctx.options.duration('sagemaker-poll') * 1000;
  const jobName = trainingJobName(target.prefix, randomBytes(3).toString('hex'));
  // checked before any client is built or anything is written: bad input costs one line and nothing else
  trainingJobRequest(ctx, target, { jobName, storeUri: (k) => `s3://check/${k}`, configRel });
  const store = ctx.deps.store();
  const req = trainingJobRequest(ctx, target, {
    jobName,
    storeUri: (k) => store.uri(k),
    configRel: configRel.split(path.sep).join('/'),
  });
  const keys = sagemakerKeys(storeRoot(ctx), target.prefix, jobName);
  const uri = store.uri(target.prefix);

  const dataKey = optionalSetting(ctx.options.string('data-key'));
  const query = await checkTrainTarget(ctx, store, target, dataKey);
  // the lease comes before anything in the folder is touched, as on the instance engine: a live run's
  // uploads are not leftovers, and two runs of one model never mix their files
  const lease = await acquireFolderLease(store, ctx.deps.clock, log, target.prefix, runLabel(ctx.deps.ci));
  try {
    await clearFolderHoldingLease(store, target.prefix, log);
    const sha = await resolveSha(ctx);
    const work = await fs.mkdtemp(path.join(tmpdir(), 'mp-sm-train-'));
    const uploaded: { key: string; entry: ManifestFile }[] = [];
    try {
      // the repository as a source archive under the store (never the store folder, .git or node_modules)
      const excludes = [...DEFAULT_EXCLUDES, ...ctx.options.list('sync-excludes')];
      const localStore = path.resolve(ctx.deps.cwd, ctx.options.string('local-store'));
      const rel = path.relative(ctx.deps.cwd, localStore);
      if (rel && !rel.startsWith('..')) excludes.push(rel);
      const archive = path.join(work, 'source.tar.gz');
      await tar(
        ['-czf', archive, ...excludes.map((e) => `--exclude=./${e.replace(/^\/+/, '')}`), '.'],
        ctx.deps.cwd,
      );
      await store.uploadFile(keys.source, archive);
      log.info(`source archive: ${store.uri(keys.source)}`);

      log.info(
        `training job ${jobName}: ${req.ResourceConfig.InstanceCount} x ${req.ResourceConfig.InstanceType}` +
          `${req.EnableManagedSpotTraining ? ' (managed spot)' : ''}, at most ${formatDuration(req.StoppingCondition.MaxRuntimeInSeconds)}`,
      );
      // saved before the request: a run killed while it is in flight leaves the post step its name
      ctx.deps.state.save(STATE_TRAINING_JOB, jobName);
      await sm.createTrainingJob(req);
      const final = await waitForTrainingJob(ctx, sm, jobName, pollMs, logs).catch(async (err: unknown) => {
        // a run that gives up on its job (SageMaker unreachable, throttled past retries) stops it first
        if (!ctx.signal.aborted)
          await sm.stopTrainingJob(jobName).catch((e: unknown) => {
            log.warn(`could not stop training job ${jobName}: ${messageOf(e)}; sweep or max-runtime ends it`);
          });
        throw err;
      });
      if (final.status !== 'Completed')
        throw new PipelineError(
          `training job ${jobName} ended ${final.status}${final.failureReason ? `: ${final.failureReason}` : ''}; no model was written`,
        );

      const tarKey = `${keys.output}${jobName}/output/model.tar.gz`;
      if (!(await store.head(tarKey)))
        throw new PipelineError(
          `training job ${jobName} completed but left no ${store.uri(tarKey)}: did the entry write into /opt/ml/model?`,
        );
      const tarball = path.join(work, 'model.tar.gz');
      await store.downloadFile(tarKey, tarball);
      const out = path.join(work, 'model');
      await fs.mkdir(out);
      await tar(['-xzf', tarball, '-C', out]);

      let metricsText: string | undefined;
      let metricsLocal: string | undefined;
      for (const a of trainArtifacts({
        outputDir: '.',
        metricsFile: metricsFile && path.posix.basename(metricsFile),
      })) {
        const local = path.join(out, a.remotePath);
        const exists = await fs
          .stat(local)
          .then((s) => s.isFile())
          .catch(() => false);
        if (!exists) {
          if (a.required)
            throw new PipelineError(
              `training job ${jobName} succeeded but its model folder holds no ${a.name}; the training command must write it into MODEL_PIPELINE_OUTPUT_DIR`,
            );
          continue;
        }
        const key = target.prefix + a.name;
        const up = await uploadManifestFile(store, key, local, a.name);
        uploaded.push(up);
        log.info(`uploaded ${a.name} (${up.entry.size} bytes) to ${store.uri(key)}`);
        if (metricsFile && a.name === path.posix.basename(metricsFile)) {
          metricsText = await fs.readFile(local, 'utf8');
          metricsLocal = local;
        }
      }
      // the JUnit benchmark report, as the instance engine writes it
      const benchmark = metricsLocal
        ? await trainBenchmarkReport(ctx, target.prefix, metricsLocal, work)
        : undefined;
      if (benchmark?.xmlFile)
        uploaded.push(
          await uploadManifestFile(store, target.prefix + BENCHMARK_XML, benchmark.xmlFile, BENCHMARK_XML),
        );
      const configName = path.basename(target.config.path);
      if (!uploaded.some((u) => u.entry.name === configName)) {
        const configFile = path.resolve(ctx.deps.cwd, target.config.path);
        const key = target.prefix + configName;
        uploaded.push(await uploadManifestFile(store, key, configFile, configName));
      }
      const inputs = dataKey ? [{ key: dataKey, size: (await store.head(dataKey))?.size }] : [];
      const finishedAt = ctx.deps.clock.now();
      const manifest = buildTrainManifest({
        model: { name: target.modelName ?? target.id.name, version: target.id.version, sha },
        files: uploaded.map((u) => u.entry),
        config: { path: target.config.path, sha256: target.config.hash },
        inputs,
        sources: query.inputs.sources,
        git: { sha, branch: ctx.deps.ci.branch, repository: ctx.deps.ci.repository },
        build: {
          backend: 'sagemaker',
          ami: req.AlgorithmSpecification.TrainingImage,
          instanceType: `${req.ResourceConfig.InstanceCount}x${req.ResourceConfig.InstanceType}`,
          instanceId: jobName,
          startedAt,
          finishedAt,
          runUrl: ctx.deps.ci.runUrl,
          actor: ctx.deps.ci.actor,
        },
        metrics:
          metricsText !== undefined
            ? { file: path.posix.basename(metricsFile!), text: metricsText }
            : undefined,
        benchmark: benchmark && {
          passed: benchmark.passed,
          report: benchmark.xmlFile ? BENCHMARK_XML : undefined,
        },
      });
      // proof, right before the model becomes complete, that the folder is still this run's
      await lease.confirm();
      try {
        await store.put(target.prefix + MANIFEST_FILE, JSON.stringify(manifest, null, 2) + '\n', {
          ifNoneMatch: true,
          contentType: 'application/json',
        });
      } catch (err) {
        if (err instanceof PreconditionFailedError) {
          uploaded.length = 0;
          throw new PipelineError(
            `another run completed ${target.prefix} at the same time; its model stands`,
          );
        }
        throw err;
      }
      const seconds = durationSeconds(startedAt, finishedAt);
      log.info(`model complete: ${uri}`);
      return {
        outputs: {
          'instance-id': jobName,
          'model-prefix': target.prefix,
          'model-uri': uri,
          'duration-seconds': String(seconds),
          'benchmark-passed': manifest.benchmark ? String(manifest.benchmark.passed) : '',
        },
        summary:
          `### train: ${target.prefix}\n\n| | |\n| --- | --- |\n| model | \`${uri}\` |\n` +
          `| training job | ${jobName} (${req.ResourceConfig.InstanceCount} x ${req.ResourceConfig.InstanceType}) |\n` +
          `| files | ${uploaded.map((u) => u.entry.name).join(', ')} |\n| duration | ${formatDuration(seconds)} |\n` +
          (benchmark?.summary ? `\n${benchmark.summary}\n` : ''),
        text: `model ${target.prefix} trained by SageMaker job ${jobName} in ${formatDuration(seconds)}: ${uri}`,
      };
    } catch (err) {
      // a run that lost its lease leaves the files alone: they belong to the run holding it now
      if (uploaded.length > 0 && !lease.lost.aborted)
        await store.deleteMany(uploaded.map((u) => u.key)).catch((e: unknown) => {
          log.warn(`could not remove partial uploads under ${uri}: ${messageOf(e)}`);
        });
      throw err;
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  } finally {
    await lease
      .release()
      .catch((err) => log.warn(`could not release the lease ${store.uri(lease.key)}: ${messageOf(err)}`));
  }
}

/** The post step and `sweep`: stop the job a cancelled or crashed run left running. */
export async function stopLeftoverJob(ctx: CommandContext, sm: SageMaker): Promise<string | undefined> {
  const name = ctx.deps.state.get(STATE_TRAINING_JOB);
  if (!name) return undefined;
  const info = await sm.describeTrainingJob(name);
  if (info && !isTerminal(info.status) && info.status !== 'Stopping') {
    ctx.deps.logger.warn(`training job ${name} of this run is still ${info.status}: stopping it`);
    await sm.stopTrainingJob(name);
    return name;
  }
  ctx.deps.logger.info(`training job ${name} is already ${info?.status ?? 'gone'}`);
  return undefined;
}
