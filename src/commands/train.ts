import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DEFAULT_EXCLUDES } from '../adapters/ssh/argv';
import { parseDuration, formatDuration } from '../core/duration';
import { messageOf, PipelineError, PreconditionFailedError, UserError } from '../core/errors';
import { parseHostKeyOption } from '../core/host-keys';
import { TAG_LAUNCH_TOKEN, trainInstanceTags } from '../core/instance-tags';
import { ciRunOf } from '../core/ci-env';
import { MANIFEST_FILE, storedRecord, type ManifestFile } from '../core/manifest';
import type { Compute, HostKeys, InstanceInfo, LaunchRequest, RemoteShell } from '../core/ports';
import {
  buildTrainManifest,
  checkRelativePath,
  durationSeconds,
  ephemeralKeyName,
  existingFilesCommand,
  instanceFetchCommand,
  instanceUploadCommand,
  MISSING_EXIT,
  parseExistingFiles,
  parseFileReports,
  planTrainSteps,
  trainArtifacts,
  trainCommandLine,
  type TrainStepId,
  type TransferMode,
} from '../core/train';
import { backendOf } from '../wiring';
import { acquireFolderLease, runLabel, type HeldLease } from './folder-lease';
import {
  FORCE_OPTION,
  loadTargets,
  MODEL_SOURCES_OPTION,
  resolveSha,
  type ModelTarget,
} from './model-context';
import { TRAIN_OPTIONS } from './train-options';
import { REPO_OPTIONS, STORE_OPTIONS } from './common-options';
import { readAmiVersion } from './ami-version';
import { benchmarkArtifacts, emitAnnotations } from './benchmark-report';
import { THRESHOLDS_OPTION } from './registry-context';
import { parseEnvironment } from '../core/registry';
import { uploadManifestFile } from './manifest-upload';
import { checkTrainTarget, clearFolderHoldingLease } from './train-guards';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { formatBytes } from '../core/progress';
import { outputsOf } from './output-specs';
import { parseSteps, type StepGraph } from '../core/steps';
import {
  checkStepInputs,
  mergedJunit,
  runTrainSteps,
  STEP_OPTIONS,
  stepsMarkdown,
  type StepsOutcome,
} from './train-steps';
import { SAGEMAKER_TRAIN_OPTIONS } from './sagemaker-options';
import { sagemakerEngine, sagemakerCleanup } from './train-sagemaker-wiring';

const BENCHMARK_XML = 'benchmark_results.xml';

/**
 * `none` turns off a setting that has a default: the Actions runner passes an unset input as '', so an
 * empty value cannot mean "none" there.
 */
function optionalSetting(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v && v.toLowerCase() !== 'none' ? v : undefined;
}

/**
 * The JUnit benchmark report of a finished training, against the thresholds file and the model the target
 * environment runs now. A metrics file that cannot be read marks the model failed (promote then refuses it)
 * instead of throwing the trained model away.
 */
async function benchmarkReport(
  ctx: CommandContext,
  target: ModelTarget,
  metricsFile: string,
  work: string,
): Promise<{ passed: boolean; xmlFile?: string; summary?: string }> {
  const log = ctx.deps.logger;
  const environment = parseEnvironment(ctx.options.string('environment') || 'production');
  try {
    const r = await benchmarkArtifacts(
      ctx,
      ctx.deps.store(),
      target.prefix,
      metricsFile,
      ctx.options.string('thresholds-file') || undefined,
      environment,
    );
    emitAnnotations(log, r.annotations);
    const xmlFile = path.join(work, 'out', BENCHMARK_XML);
    await fs.writeFile(xmlFile, r.xml);
    const reportDir = ctx.options.string('report-dir');
    if (reportDir) {
      const dir = path.resolve(ctx.deps.cwd, reportDir);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, BENCHMARK_XML), r.xml);
      log.info(`benchmark report: ${path.join(dir, BENCHMARK_XML)}`);
    }
    log.info(`benchmark against ${environment}: ${r.passed ? 'passed' : 'FAILED'}`);
    return { passed: r.passed, xmlFile, summary: r.summary };
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    log.error(`benchmark report: ${err.message}; the model is recorded as failed`);
    return { passed: false };
  }
}

/** State names the action's post step reads to clean up after a cancelled or crashed run. */
export const STATE_INSTANCE_ID = 'instance-id';
export const STATE_KEY_NAME = 'ephemeral-key-name';
export const STATE_LAUNCH_TOKEN = 'launch-token';

const GONE = new Set(['terminated', 'shutting-down']);

interface Settings {
  backend: 'aws' | 'local';
  trainCommand: string;
  trainTimeout: number;
  bootTimeout: number;
  maxRuntime: number;
  dataKey?: string;
  outputDir: string;
  metricsFile?: string;
  remoteDir: string;
  excludes: string[];
  transfer: TransferMode;
  awsCommand: string;
  s3Endpoint?: string;
}

/** Every setting checked before anything is launched: a typo must cost nothing. */
function readSettings(ctx: CommandContext): Settings {
  const o = ctx.options;
  const backend = backendOf(o);
  const outputDir = checkRelativePath(o.string('output-dir'), 'output-dir');
  const metricsOption = optionalSetting(o.string('metrics-file'));
  const metricsFile = metricsOption ? checkRelativePath(metricsOption, 'metrics-file') : '';
  const excludes = [...DEFAULT_EXCLUDES, ...o.list('sync-excludes')];
  if (backend === 'local') {
    // the local store usually lives in the repository: never copy models into the working copy
    const store = path.resolve(ctx.deps.cwd, o.string('local-store'));
    const rel = path.relative(ctx.deps.cwd, store);
    if (rel && !rel.startsWith('..') && !path.isAbsolute(rel))
      excludes.push('/' + rel.split(path.sep).join('/'));
  }
  return {
    backend,
    trainCommand: o.string('train-command'),
    trainTimeout: parseDuration(o.string('train-timeout'), 'train-timeout'),
    bootTimeout: parseDuration(o.string('boot-timeout'), 'boot-timeout'),
    maxRuntime: parseDuration(o.string('max-runtime'), 'max-runtime'),
    dataKey: optionalSetting(o.string('data-key')),
    outputDir,
    metricsFile: metricsFile ? path.posix.join(outputDir, metricsFile) : undefined,
    remoteDir: checkRelativePath(o.string('remote-dir'), 'remote-dir', true),
    excludes,
    transfer: o.string('transfer'),
    awsCommand: o.string('instance-aws-command'),
    s3Endpoint: o.string('s3-endpoint') || undefined,
  };
}

async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

async function launchRequest(
  ctx: CommandContext,
  compute: Compute,
  target: ModelTarget,
  s: Settings,
  keyName: string | undefined,
  launchToken: string,
): Promise<LaunchRequest> {
  const o = ctx.options;
  const tags = trainInstanceTags({
    modelPrefix: target.prefix,
    repo: ctx.deps.ci.repository,
    runUrl: ctx.deps.ci.runUrl,
    ci: { run: ciRunOf(ctx.deps.ci), attempt: ctx.deps.ci.runAttempt, job: ctx.deps.ci.job },
    launchToken,
  });
  const req: LaunchRequest = {
    imageId: o.string('ami-id') ?? '',
    instanceTypes: o.list('instance-types'),
    subnetIds: o.list('subnet-id'),
    securityGroupIds: o.list('security-group-id'),
    keyName,
    spot: o.bool('spot'),
    rootVolumeGiB: o.int('root-volume-gib'),
    maxRuntimeSeconds: s.maxRuntime,
    tags,
    instanceProfile: o.string('instance-profile') || undefined,
    clientToken: launchToken,
  };
  if (compute.resolveLaunchTargets) {
    const resolved = await compute.resolveLaunchTargets({
      amiId: o.string('ami-id') || undefined,
      amiVersion: (await readAmiVersion(ctx, 'optional'))?.version,
      amiNamePattern: o.string('ami-name-pattern') || undefined,
      subnetIds: o.list('subnet-id'),
      subnetCidrs: o.list('subnet-cidr'),
      securityGroupIds: o.list('security-group-id'),
      securityGroupNames: o.list('security-group-name'),
    });
    ctx.deps.logger.info(`training AMI ${resolved.image.imageId} (${resolved.image.via})`);
    req.imageId = resolved.image.imageId;
    req.subnetIds = resolved.subnetIds;
    req.securityGroupIds = resolved.securityGroupIds;
  }
  return req;
}

/** Terminate whatever happened; a failure to terminate is itself a failure (a leaked instance costs money). */
async function terminate(ctx: CommandContext, compute: Compute, id: string): Promise<void> {
  const log = ctx.deps.logger;
  try {
    await compute.terminate(id);
    log.info(`terminated ${id}`);
  } catch (err) {
    throw new PipelineError(
      `could not terminate instance ${id}: ${messageOf(err)}; terminate it by hand (or run the sweep command)`,
    );
  }
}

interface Uploaded {
  key: string;
  entry: ManifestFile;
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const engine = sagemakerEngine(ctx);
  if (engine) return engine();
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
  const steps = planTrainSteps({ dataKey: s.dataKey, backend: s.backend });
  const step = (id: TrainStepId): void => {
    const i = steps.findIndex((x) => x.id === id);
    if (i >= 0) log.info(`[${i + 1}/${steps.length}] ${steps[i].title}`);
  };

  step('check-store');
  const store = ctx.deps.store();
  const uri = store.uri(target.prefix);
  if (s.transfer === 'instance' && !uri.startsWith('s3://'))
    throw new UserError(
      `transfer instance needs an S3 store (the instance uploads with the aws CLI); this store is ${uri}`,
    );
  const query = await checkTrainTarget(ctx, store, target, s.dataKey);
  const sources = query.inputs.sources;
  if (graph) await checkStepInputs(graph, store, target.config.path);
  // the lease comes before anything in the folder is touched: a live run's uploads are not leftovers
  const lease = await acquireFolderLease(store, ctx.deps.clock, log, target.prefix, runLabel(ctx.deps.ci));
  try {
    return await trainHoldingLease(ctx, s, target, configRel, step, lease, startedAt, sources, graph);
  } finally {
    await lease
      .release()
      .catch((err) => log.warn(`could not release the lease ${store.uri(lease.key)}: ${messageOf(err)}`));
  }
}

async function trainHoldingLease(
  parent: CommandContext,
  s: Settings,
  target: ModelTarget,
  configRel: string,
  step: (id: TrainStepId) => void,
  lease: HeldLease,
  startedAt: Date,
  sources: Readonly<Record<string, string>> | undefined,
  graph: StepGraph | undefined,
): Promise<CommandResult> {
  // losing the lease stops the run like a cancellation does
  const ctx: CommandContext = { ...parent, signal: AbortSignal.any([parent.signal, lease.lost]) };
  const log = ctx.deps.logger;
  const store = ctx.deps.store();
  const uri = store.uri(target.prefix);
  await clearFolderHoldingLease(store, target.prefix, log);

  const sha = await resolveSha(ctx);
  const branch = ctx.deps.ci.branch ?? (await ctx.deps.git.currentBranch().catch(() => undefined));
  const compute = ctx.deps.compute();
  const work = await fs.mkdtemp(path.join(tmpdir(), 'mp-train-'));
  const uploaded: Uploaded[] = [];
  let instanceId: string | undefined;
  let launchToken: string | undefined;
  let keyName = ctx.options.string('key-name') || undefined;
  let privateKey = ctx.options.string('ssh-private-key') || undefined;
  let ephemeralKey: string | undefined;
  let shell: RemoteShell | undefined;
  let failure: unknown;
  let result: CommandResult | undefined;

  try {
    if (keyName && !privateKey && compute.createKeyPair)
      throw new UserError(`key-name ${keyName} needs its private key in ssh-private-key`);
    if (!privateKey && compute.createKeyPair) {
      const name = ephemeralKeyName(target.id.name, randomBytes(4).toString('hex'));
      ctx.deps.state.save(STATE_KEY_NAME, name);
      const pair = await compute.createKeyPair(name, { 'model-pipeline:model-prefix': target.prefix });
      log.mask(pair.privateKey);
      ephemeralKey = pair.keyName;
      keyName = pair.keyName;
      privateKey = pair.privateKey;
      log.info(`created ephemeral key pair ${pair.keyName}`);
    }

    step('launch');
    launchToken = randomBytes(12).toString('hex');
    const req = await launchRequest(ctx, compute, target, s, keyName, launchToken);
    // saved before the request: if its answer never comes, the instance is still found by this token
    ctx.deps.state.save(STATE_LAUNCH_TOKEN, launchToken);
    const launched = await compute.launch(req, ctx.signal);
    instanceId = launched.id;
    // saved before anything else can fail, so the post step can terminate it whatever happens next
    ctx.deps.state.save(STATE_INSTANCE_ID, instanceId);
    log.info(`instance ${instanceId} launched`);

    step('wait-running');
    const instance: InstanceInfo = await compute.waitUntilRunning(instanceId, s.bootTimeout, ctx.signal);

    step('wait-ssh');
    const pinned = ctx.options.string('ssh-host-key');
    let hostKeys: HostKeys | undefined;
    if (pinned) hostKeys = parseHostKeyOption(pinned);
    else if (compute.hostKeys) hostKeys = await compute.hostKeys(instanceId, s.bootTimeout, ctx.signal);
    shell = ctx.deps.shell(instance, { privateKey, hostKeys });
    await shell.waitReady(s.bootTimeout, ctx.signal);

    step('push-code');
    await shell.pushDir(ctx.deps.cwd, s.remoteDir, s.excludes, ctx.signal);

    const inputs: { key: string; sha256?: string; size?: number }[] = [];
    let dataName = '';
    if (s.dataKey) {
      step('push-data');
      dataName = path.posix.basename(s.dataKey);
      const dest = path.posix.join(s.remoteDir, dataName);
      if (s.transfer === 'instance') {
        const r = await onInstance(
          ctx,
          shell,
          instanceFetchCommand({
            aws: s.awsCommand,
            uri: store.uri(s.dataKey),
            dest,
            endpoint: s.s3Endpoint,
          }),
          s.maxRuntime,
        );
        const h = parseFileReports(r.lines).get(dataName);
        if (r.exitCode !== 0 || !h)
          throw new PipelineError(
            `the instance could not download ${store.uri(s.dataKey)} (exit ${r.exitCode}): it needs the aws CLI and an instance profile allowed s3:GetObject`,
          );
        inputs.push({ key: s.dataKey, sha256: h.sha256, size: h.size });
        log.info(`${s.dataKey} (${formatBytes(h.size)}) downloaded by the instance`);
      } else {
        const local = path.join(work, 'input', dataName);
        await store.downloadFile(s.dataKey, local);
        const h = await hashFile(local);
        inputs.push({ key: s.dataKey, sha256: h.sha256, size: h.size });
        await shell.pushFile(local, dest, ctx.signal);
        log.info(`${s.dataKey} (${formatBytes(h.size)}) copied to the instance`);
      }
    }

    step('train');
    const trainEnv = {
      MODEL_PIPELINE_CONFIG: configRel.split(path.sep).join('/'),
      MODEL_PIPELINE_DATA: dataName,
      MODEL_PIPELINE_OUTPUT_DIR: s.outputDir,
      MODEL_PIPELINE_MODEL_VERSION: target.id.version,
      MODEL_PIPELINE_MODEL_SHA: target.id.sha7,
      MODEL_PIPELINE_MODEL_PREFIX: target.prefix,
    };
    let stepsOutcome: StepsOutcome | undefined;
    if (graph) {
      stepsOutcome = await runTrainSteps(ctx, {
        graph,
        shell,
        repoDir: s.remoteDir,
        env: trainEnv,
        work,
        timeoutSeconds: s.trainTimeout,
      });
    } else {
      log.info(`$ ${s.trainCommand}`);
      const command = trainCommandLine({ repoDir: s.remoteDir, command: s.trainCommand, env: trainEnv });
      const trainStart = Date.now();
      const exec = await shell.exec(command, {
        timeoutSeconds: s.trainTimeout,
        signal: ctx.signal,
        onOutput: (line) => log.info(line),
      });
      if (exec.exitCode !== 0) {
        throw new PipelineError(
          `training command "${s.trainCommand}" failed with exit code ${exec.exitCode} on ${instanceId} after ${formatDuration((Date.now() - trainStart) / 1000)}; see its output above. No model was written.`,
        );
      }
    }

    step('collect');
    const artifacts = trainArtifacts({ outputDir: s.outputDir, metricsFile: s.metricsFile });
    let metricsText: string | undefined;
    let metricsLocal: string | undefined;
    // one round trip says which of the files the runner copies back exist, instead of one per file
    const viaRunner = artifacts
      .filter((a) => s.transfer !== 'instance' || a.remotePath === s.metricsFile)
      .map((a) => path.posix.join(s.remoteDir, a.remotePath));
    const existing =
      viaRunner.length > 0 ? await existingRemoteFiles(ctx, shell, viaRunner) : new Map<string, number>();
    for (const a of artifacts) {
      const remote = path.posix.join(s.remoteDir, a.remotePath);
      const key = target.prefix + a.name;
      if (s.transfer === 'instance' && a.remotePath !== s.metricsFile) {
        // recorded before the upload starts, so a failure part-way still removes it
        uploaded.push({ key, entry: { name: a.name, size: 0, sha256: '' } });
        const r = await onInstance(
          ctx,
          shell,
          instanceUploadCommand({
            aws: s.awsCommand,
            file: remote,
            name: a.name,
            uri: store.uri(key),
            endpoint: s.s3Endpoint,
          }),
          s.maxRuntime,
        );
        const h = parseFileReports(r.lines).get(a.name);
        if (r.exitCode === MISSING_EXIT) {
          uploaded.pop();
          if (a.required)
            throw new PipelineError(
              `the training command succeeded but left no ${a.remotePath} (in ${s.remoteDir} on ${instanceId}); it must write ${a.name}`,
            );
          log.info(`no ${a.remotePath}: skipped`);
          continue;
        }
        if (r.exitCode !== 0 || !h)
          throw new PipelineError(
            `the instance could not upload ${a.name} to ${store.uri(key)} (exit ${r.exitCode}): it needs the aws CLI and an instance profile allowed s3:PutObject`,
          );
        const stored = await store.stat(key);
        if (stored?.size !== h.size)
          throw new PipelineError(
            `${store.uri(key)} is ${stored?.size ?? 'missing'} bytes after the upload, the instance sent ${h.size}`,
          );
        // what the store reports right after the instance's upload (its responses stay on the instance)
        uploaded[uploaded.length - 1].entry = {
          name: a.name,
          size: h.size,
          sha256: h.sha256,
          stored: storedRecord(stored),
        };
        log.info(`the instance uploaded ${a.name} (${formatBytes(h.size)}) to ${store.uri(key)}`);
        continue;
      }
      const expectedSize = existing.get(remote);
      if (expectedSize === undefined) {
        if (a.required)
          throw new PipelineError(
            `the training command succeeded but left no ${a.remotePath} (in ${s.remoteDir} on ${instanceId}); it must write ${a.name}`,
          );
        log.info(`no ${a.remotePath}: skipped`);
        continue;
      }
      const local = path.join(work, 'out', a.name);
      await shell.pullFile(remote, local, ctx.signal);
      const pulledSize = (await fs.stat(local)).size;
      if (pulledSize !== expectedSize)
        throw new PipelineError(
          `${a.remotePath} on ${instanceId} was ${expectedSize} bytes but ${pulledSize} came back: does something still write it after the training command ended?`,
        );
      // one read of the file feeds the upload and its sha256 (hashed on a worker thread)
      const up = await uploadManifestFile(store, key, local, a.name);
      uploaded.push(up);
      log.info(`uploaded ${a.name} (${formatBytes(up.entry.size)}) to ${store.uri(key)}`);
      if (a.remotePath === s.metricsFile) {
        metricsText = await fs.readFile(local, 'utf8');
        metricsLocal = local;
      }
    }
    let benchmark = metricsLocal ? await benchmarkReport(ctx, target, metricsLocal, work) : undefined;
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
      const key = target.prefix + BENCHMARK_XML;
      uploaded.push(await uploadManifestFile(store, key, benchmark.xmlFile, BENCHMARK_XML));
    }
    const configName = path.basename(target.config.path);
    if (!uploaded.some((u) => u.entry.name === configName)) {
      const configFile = path.resolve(ctx.deps.cwd, target.config.path);
      const key = target.prefix + configName;
      uploaded.push(await uploadManifestFile(store, key, configFile, configName));
    }

    step('manifest');
    // proof, right before the model becomes complete, that the folder is still this run's
    await lease.confirm();
    const finishedAt = ctx.deps.clock.now();
    const manifest = buildTrainManifest({
      model: { name: target.modelName ?? target.id.name, version: target.id.version, sha },
      files: uploaded.map((u) => u.entry),
      config: { path: target.config.path, sha256: target.config.hash },
      inputs,
      git: { sha, branch, repository: ctx.deps.ci.repository },
      build: {
        backend: s.backend,
        ami: instance.imageId,
        instanceType: instance.instanceType,
        instanceId,
        startedAt,
        finishedAt,
        runUrl: ctx.deps.ci.runUrl,
        actor: ctx.deps.ci.actor,
      },
      metrics:
        metricsText !== undefined
          ? { file: path.posix.basename(s.metricsFile!), text: metricsText }
          : undefined,
      benchmark: benchmark && {
        passed: benchmark.passed,
        report: benchmark.xmlFile ? BENCHMARK_XML : undefined,
      },
      sources,
      steps: stepsOutcome?.records,
    });
    try {
      await store.put(target.prefix + MANIFEST_FILE, JSON.stringify(manifest, null, 2) + '\n', {
        ifNoneMatch: true,
        contentType: 'application/json',
      });
    } catch (err) {
      if (err instanceof PreconditionFailedError) {
        uploaded.length = 0; // the folder belongs to the run that won: leave it alone
        throw new PipelineError(`another run completed ${target.prefix} at the same time; its model stands`);
      }
      throw err;
    }
    log.info(`model complete: ${uri}`);
    const seconds = durationSeconds(startedAt, finishedAt);
    result = {
      outputs: {
        'instance-id': instanceId,
        'model-prefix': target.prefix,
        'model-uri': uri,
        'duration-seconds': String(seconds),
        'benchmark-passed': benchmark ? String(benchmark.passed) : '',
      },
      summary:
        `### train: ${target.prefix}\n\n` +
        `| | |\n| --- | --- |\n| model | \`${uri}\` |\n| instance | ${instanceId} (${instance.instanceType ?? s.backend}) |\n` +
        `| files | ${uploaded.map((u) => u.entry.name).join(', ')} |\n| duration | ${formatDuration(seconds)} |\n` +
        (stepsOutcome ? `\n#### steps\n\n${stepsMarkdown(stepsOutcome.rows)}\n` : '') +
        (benchmark?.summary ? `\n${benchmark.summary}\n` : ''),
      text: `model ${target.prefix} trained in ${formatDuration(seconds)}: ${uri}`,
    };
  } catch (err) {
    failure = err;
  } finally {
    await shell?.close?.().catch(() => undefined);
    const problems: string[] = [];
    if (failure !== undefined && uploaded.length > 0 && lease.lost.aborted) {
      log.warn(
        `the lease on ${target.prefix} was lost: its files now belong to the run holding it; left alone`,
      );
    } else if (failure !== undefined && uploaded.length > 0) {
      try {
        await ctx.deps.store().deleteMany(uploaded.map((u) => u.key));
        log.info(`removed the ${uploaded.length} file(s) this failed run had uploaded`);
      } catch (err) {
        log.warn(
          `could not remove partial uploads under ${uri} (no manifest, so not a model): ${messageOf(err)}`,
        );
      }
    }
    if (instanceId || launchToken) {
      step('terminate');
      try {
        if (instanceId) await terminate(ctx, compute, instanceId);
        // a launch whose answer never came: whatever carries this run's token
        if (launchToken && !instanceId) await terminateByToken(ctx, compute, launchToken);
      } catch (err) {
        problems.push(messageOf(err));
      }
    }
    if (ephemeralKey && compute.deleteKeyPair) {
      try {
        await compute.deleteKeyPair(ephemeralKey);
      } catch (err) {
        problems.push(`could not delete key pair ${ephemeralKey}: ${messageOf(err)}`);
      }
    }
    await fs.rm(work, { recursive: true, force: true });
    if (failure === undefined && problems.length > 0) failure = new PipelineError(problems.join('; '));
    else for (const p of problems) log.error(p);
  }
  if (failure !== undefined) throw explain(ctx, lease, failure, instanceId);
  return result!;
}

/** Which of the given remote files exist, with their sizes, in one command. */
async function existingRemoteFiles(
  ctx: CommandContext,
  shell: RemoteShell,
  remotePaths: string[],
): Promise<Map<string, number>> {
  const lines: string[] = [];
  const r = await shell.exec(existingFilesCommand(remotePaths), {
    timeoutSeconds: 120,
    signal: ctx.signal,
    onOutput: (line) => lines.push(line),
  });
  if (r.exitCode !== 0)
    throw new PipelineError(
      `could not list the training outputs on the instance (exit ${r.exitCode}): ${lines.slice(-5).join(' ')}`,
    );
  return parseExistingFiles(lines);
}

/** A transfer command on the instance: report lines kept, anything else (aws CLI errors) logged. */
async function onInstance(
  ctx: CommandContext,
  shell: RemoteShell,
  command: string,
  timeoutSeconds: number,
): Promise<{ exitCode: number; lines: string[] }> {
  const lines: string[] = [];
  const r = await shell.exec(command, {
    timeoutSeconds,
    signal: ctx.signal,
    onOutput: (line) => {
      lines.push(line);
      if (!line.startsWith('MP-FILE ')) ctx.deps.logger.info(line);
    },
  });
  return { exitCode: r.exitCode, lines };
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

/** Terminates every live instance tagged with the launch token (but `except`, already handled). */
async function terminateByToken(
  ctx: CommandContext,
  compute: Compute,
  token: string,
  except?: string,
): Promise<void> {
  const found = await compute.findByTags({ [TAG_LAUNCH_TOKEN]: token });
  for (const i of found) {
    if (i.id === except || GONE.has(i.state)) continue;
    ctx.deps.logger.warn(
      `instance ${i.id} carries this run's launch token and is ${i.state}: terminating it`,
    );
    await terminate(ctx, compute, i.id);
  }
}

/** The post step: the instance and key pair of a run that could not clean up itself (cancelled, crashed). */
async function cleanup(ctx: CommandContext): Promise<void> {
  await sagemakerCleanup(ctx);
  const id = ctx.deps.state.get(STATE_INSTANCE_ID);
  const keyName = ctx.deps.state.get(STATE_KEY_NAME);
  const token = ctx.deps.state.get(STATE_LAUNCH_TOKEN);
  if (!id && !keyName && !token) return;
  const compute = ctx.deps.compute();
  const log = ctx.deps.logger;
  // killed between the launch request and its answer: only the token knows the instance
  if (token) await terminateByToken(ctx, compute, token, id || undefined);
  if (id) {
    const info = await compute.describe(id);
    if (info && !GONE.has(info.state)) {
      log.warn(`instance ${id} of this job is still ${info.state}: terminating it`);
      await terminate(ctx, compute, id);
    } else {
      log.info(`instance ${id} is already ${info?.state ?? 'gone'}`);
    }
  }
  if (keyName && compute.deleteKeyPair) {
    await compute.deleteKeyPair(keyName);
    log.info(`key pair ${keyName} deleted`);
  }
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
