import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { messageOf, PipelineError, UserError } from '../core/errors';
import { MODEL_FILE } from '../core/manifest';
import {
  parseEnvironment,
  registryKeys,
  resolveModelRef,
  type Environment,
  type ModelRef,
} from '../core/registry';
import {
  buildDeployRequests,
  deploymentName,
  endpointName,
  endpointSettled,
  runTags,
  type EndpointInfo,
  type SageMaker,
} from '../core/sagemaker';
import { createSageMaker } from '../wiring-sagemaker';
import { folderState, loadTargets, MODEL_SOURCES_OPTION, readConfigFile } from './model-context';
import { joinKey } from '../core/identity';
import {
  actorOf,
  MODEL_NAME_OPTION,
  putOnce,
  readManifest,
  readPointer,
  scopeOf,
  storeRoot,
} from './registry-context';
import { DEPLOY_OPTIONS } from './sagemaker-options';
import { DEFAULT_READ_ENVIRONMENT, ENVIRONMENT_OPTION, REPO_OPTIONS, STORE_OPTIONS } from './common-options';
import { defineOptions } from '../core/options';
import { outputsOf } from './output-specs';
import type { CommandContext, CommandDef, CommandResult } from './types';

/** `deploy`, `endpoint-status`, `undeploy`: the model an environment points at, served by a SageMaker endpoint. */

/** `<model name>-<environment>` unless endpoint-name is given; the name comes from model-name or the config. */
async function endpointOf(ctx: CommandContext, env: Environment): Promise<string> {
  const given = ctx.options.string('endpoint-name');
  if (given) return given;
  return endpointName((await modelNameOf(ctx)) ?? 'model', env);
}

/** model-name, else the `name` of the config at config-path (as fetch-model finds the registry). */
async function modelNameOf(ctx: CommandContext): Promise<string | undefined> {
  const name = ctx.options.string('model-name');
  if (name) return name;
  const configPath = ctx.options.string('config-path');
  if (!configPath || /[*?[{]/.test(configPath)) return undefined;
  const exists = await fs
    .access(path.resolve(ctx.deps.cwd, configPath))
    .then(() => true)
    .catch(() => false);
  return exists ? (await readConfigFile(ctx.deps.cwd, configPath)).name : undefined;
}

/** development: this commit's model; staging / production: what the environment's pointer names. */
async function modelOf(
  ctx: CommandContext,
  env: Environment,
): Promise<{ ref: ModelRef; pointerSeq?: number }> {
  const store = ctx.deps.store();
  if (env === 'development') {
    const { targets } = await loadTargets(ctx);
    const name = ctx.options.string('model-name');
    const chosen = name ? targets.filter((t) => (t.modelName ?? '') === name) : targets;
    if (chosen.length !== 1)
      throw new UserError(`config-path selects ${chosen.length} models: name one with model-name`);
    const ref = resolveModelRef(chosen[0].prefix, '', '');
    if (!(await folderState(store, ref.folder)).complete)
      throw new PipelineError(`no model for development: ${store.uri(ref.folder)} is not a complete model`);
    return { ref };
  }
  const name = await modelNameOf(ctx);
  const scope = name ? joinKey(storeRoot(ctx), name) + '/' : scopeOf(ctx);
  const { pointer } = await readPointer(store, scope, env);
  if (!pointer)
    throw new PipelineError(
      `no model for ${env}: nothing was promoted to ${env} (no ${store.uri(registryKeys.pointer(scope, env))}). Promote a model first.`,
    );
  return { ref: resolveModelRef(pointer.prefix, '', ''), pointerSeq: pointer.seq };
}

function stampOf(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '')
    .toLowerCase();
}

/** Polls until the endpoint settles, logging each status change; a timeout is a failure. */
async function waitSettled(
  ctx: CommandContext,
  sm: SageMaker,
  name: string,
  timeoutSeconds: number,
  pollMs: number,
): Promise<EndpointInfo> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let last = '';
  for (;;) {
    const e = await sm.describeEndpoint(name);
    if (!e) throw new PipelineError(`endpoint ${name} disappeared while we waited for it`);
    if (e.status !== last)
      ctx.deps.logger.info(`endpoint ${name}: ${e.status}${e.failureReason ? ` (${e.failureReason})` : ''}`);
    last = e.status;
    if (endpointSettled(e.status)) return e;
    if (Date.now() > deadline)
      throw new PipelineError(
        `endpoint ${name} is still ${e.status} after ${timeoutSeconds}s (deploy-timeout)`,
      );
    if (ctx.signal.aborted) throw new PipelineError(`deploy interrupted: endpoint ${name} is ${e.status}`);
    await ctx.deps.clock.sleep(pollMs, ctx.signal).catch(() => undefined);
  }
}

/** Removes an endpoint config and the models it serves; failures are logged, not thrown (cleanup). */
async function removeConfig(ctx: CommandContext, sm: SageMaker, config: string): Promise<void> {
  try {
    const models = (await sm.endpointConfigModels(config)) ?? [];
    await sm.deleteEndpointConfig(config);
    for (const m of models) await sm.deleteModel(m);
  } catch (err) {
    ctx.deps.logger.warn(`could not remove endpoint config ${config}: ${messageOf(err)}`);
  }
}

export async function deploy(ctx: CommandContext, sm: SageMaker): Promise<CommandResult> {
  const o = ctx.options;
  const log = ctx.deps.logger;
  const env = parseEnvironment(o.string('environment'));
  const timeout = o.duration('deploy-timeout');
  const pollMs = o.duration('sagemaker-poll') * 1000;
  const endpoint = await endpointOf(ctx, env);
  const spec = {
    endpoint,
    image: o.string('serving-image') ?? '',
    role: o.string('sagemaker-role') ?? '',
    instanceType: o.string('endpoint-instance-type'),
    instanceCount: o.int('endpoint-instance-count'),
    environment: env,
  };
  // checked before the store or SageMaker is asked anything: bad input costs one line and nothing else
  buildDeployRequests({
    ...spec,
    name: endpoint,
    modelUri: 's3://check/',
    version: '0.0.0',
    modelSha256: '',
    tags: [],
  });
  const store = ctx.deps.store();
  const { ref, pointerSeq } = await modelOf(ctx, env);
  const manifest = await readManifest(store, ref);
  const model = manifest.files.find((f) => f.name === MODEL_FILE);
  if (!model) throw new PipelineError(`${store.uri(ref.folder)} lists no ${MODEL_FILE} in its manifest`);
  const now = ctx.deps.clock.now();
  const name = deploymentName(endpoint, ref.id.version, stampOf(now));
  const req = buildDeployRequests({
    ...spec,
    name,
    modelUri: store.uri(ref.folder),
    version: ref.id.version,
    modelSha256: model.sha256,
    tags: runTags({
      modelPrefix: ref.folder,
      repo: ctx.deps.ci.repository,
      runUrl: ctx.deps.ci.runUrl,
      extra: { 'model-pipeline:environment': env },
    }),
  });
  const previous = await sm.describeEndpoint(endpoint);
  if (previous && !endpointSettled(previous.status))
    throw new PipelineError(
      `endpoint ${endpoint} is ${previous.status}: wait until it settles, then deploy again`,
    );

  await sm.createModel(req.model);
  try {
    await sm.createEndpointConfig(req.config);
  } catch (err) {
    await sm.deleteModel(name).catch(() => undefined);
    throw err;
  }
  if (!previous) {
    log.info(`creating endpoint ${endpoint} with ${name}`);
    await sm.createEndpoint(endpoint, name, req.config.Tags);
    const e = await waitSettled(ctx, sm, endpoint, timeout, pollMs);
    if (e.status !== 'InService') {
      await sm.deleteEndpoint(endpoint).catch(() => undefined);
      await removeConfig(ctx, sm, name);
      throw new PipelineError(
        `endpoint ${endpoint} ended ${e.status}${e.failureReason ? `: ${e.failureReason}` : ''}; it was removed`,
      );
    }
  } else {
    log.info(`updating endpoint ${endpoint}: ${previous.configName} -> ${name}`);
    await sm.updateEndpoint(endpoint, name);
    const e = await waitSettled(ctx, sm, endpoint, timeout, pollMs);
    if (e.status !== 'InService' || e.configName !== name) {
      log.error(`update of ${endpoint} failed (${e.status}${e.failureReason ? `: ${e.failureReason}` : ''})`);
      if (e.configName !== previous.configName || e.status !== 'InService') {
        log.warn(`rolling ${endpoint} back to ${previous.configName}`);
        await sm.updateEndpoint(endpoint, previous.configName);
        const back = await waitSettled(ctx, sm, endpoint, timeout, pollMs);
        if (back.status !== 'InService' || back.configName !== previous.configName)
          throw new PipelineError(
            `endpoint ${endpoint}: the update to ${name} failed and the rollback to ${previous.configName} ended ${back.status}; fix it by hand`,
          );
      }
      await removeConfig(ctx, sm, name);
      throw new PipelineError(
        `deploy of ${ref.folder} to ${endpoint} failed${e.failureReason ? `: ${e.failureReason}` : ''}; rolled back to ${previous.configName}, which serves again`,
      );
    }
    await removeConfig(ctx, sm, previous.configName);
  }

  const at = ctx.deps.clock.now().toISOString();
  const record = {
    schemaVersion: 1 as const,
    environment: env,
    prefix: ref.folder,
    version: ref.id.version,
    modelSha256: model.sha256,
    ...(pointerSeq !== undefined ? { pointerSeq } : {}),
    at,
    actor: actorOf(ctx),
    ...(ctx.deps.ci.runUrl ? { runUrl: ctx.deps.ci.runUrl } : {}),
    ...(ctx.deps.ci.sha ? { gitSha: ctx.deps.ci.sha } : {}),
    target: 'sagemaker-endpoint',
    endpoint,
    endpointConfig: name,
    ...(previous ? { previousEndpointConfig: previous.configName } : {}),
  };
  let recordKey: string | undefined;
  for (let attempt = 0; attempt < 3 && !recordKey; attempt++) {
    const key = registryKeys.deployment(ref.scope, env, new Date(at), randomBytes(4).toString('hex'));
    if (await putOnce(store, key, JSON.stringify(record, null, 2))) recordKey = key;
  }
  if (!recordKey)
    throw new PipelineError(`${endpoint} serves ${ref.folder}, but the deployment could not be recorded`);
  const uri = store.uri(ref.folder);
  return {
    outputs: {
      'endpoint-name': endpoint,
      'endpoint-config': name,
      'endpoint-status': 'InService',
      'model-prefix': ref.folder,
      'model-uri': uri,
      'deployment-record': store.uri(recordKey),
    },
    summary:
      `### deploy: ${env}\n\n| | |\n| --- | --- |\n| endpoint | ${endpoint} (InService) |\n| config | ${name} |\n` +
      `| model | \`${uri}\` |\n| record | \`${store.uri(recordKey)}\` |\n`,
    text: `${endpoint} serves ${ref.folder} (${env}, version ${ref.id.version}) with ${name}; deployment recorded`,
  };
}

async function existingEndpoint(ctx: CommandContext, sm: SageMaker): Promise<EndpointInfo> {
  const env = ctx.options.string('endpoint-name')
    ? undefined
    : parseEnvironment(ctx.options.string('environment'));
  const name = await endpointOf(ctx, env ?? DEFAULT_READ_ENVIRONMENT);
  const e = await sm.describeEndpoint(name);
  if (!e)
    throw new UserError(`endpoint ${name} does not exist (set endpoint-name, or environment and model-name)`);
  return e;
}

export async function endpointStatus(ctx: CommandContext, sm: SageMaker): Promise<CommandResult> {
  const e = await existingEndpoint(ctx, sm);
  const models = (await sm.endpointConfigModels(e.configName)) ?? [];
  return {
    outputs: { 'endpoint-name': e.name, 'endpoint-status': e.status, 'endpoint-config': e.configName },
    summary: `### endpoint-status\n\n| | |\n| --- | --- |\n| endpoint | ${e.name} |\n| status | ${e.status} |\n| config | ${e.configName} |\n| models | ${models.join(', ')} |\n`,
    text: `${e.name}: ${e.status} (config ${e.configName}${e.failureReason ? `; ${e.failureReason}` : ''})`,
  };
}

export async function undeploy(ctx: CommandContext, sm: SageMaker): Promise<CommandResult> {
  const e = await existingEndpoint(ctx, sm);
  const timeout = ctx.options.duration('deploy-timeout');
  await sm.deleteEndpoint(e.name);
  await sm.waitEndpointDeleted(e.name, timeout);
  ctx.deps.logger.info(`endpoint ${e.name} deleted`);
  await removeConfig(ctx, sm, e.configName);
  return {
    outputs: { 'endpoint-name': e.name, 'endpoint-status': 'Deleted', 'endpoint-config': e.configName },
    text: `endpoint ${e.name} deleted with its config ${e.configName} and models`,
  };
}

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list)
  ...STORE_OPTIONS,
  ...REPO_OPTIONS,
  ENVIRONMENT_OPTION,
  MODEL_NAME_OPTION,
  MODEL_SOURCES_OPTION,
  ...DEPLOY_OPTIONS,
]);
const ENDPOINT_OUTPUTS = outputsOf('endpoint-name', 'endpoint-status', 'endpoint-config');

export const deployCommand: CommandDef = {
  name: 'deploy',
  summary:
    'Serve the model an environment points at from a SageMaker endpoint (create or update, wait InService, roll back a failed update) and record the deployment.',
  options: OPTIONS,
  outputs: [...ENDPOINT_OUTPUTS, ...outputsOf('model-prefix', 'model-uri', 'deployment-record')],
  run: (ctx) => deploy(ctx, createSageMaker(ctx)),
};

export const endpointStatusCommand: CommandDef = {
  name: 'endpoint-status',
  summary: 'Show the status and config of an environment’s SageMaker endpoint.',
  options: OPTIONS,
  outputs: ENDPOINT_OUTPUTS,
  run: (ctx) => endpointStatus(ctx, createSageMaker(ctx)),
};

export const undeployCommand: CommandDef = {
  name: 'undeploy',
  summary: 'Delete an environment’s SageMaker endpoint with its endpoint config and models.',
  options: OPTIONS,
  outputs: ENDPOINT_OUTPUTS,
  run: (ctx) => undeploy(ctx, createSageMaker(ctx)),
};
