import { UserError } from '../core/errors';
import { defineOptions } from '../core/options';
import type { ObjectStore } from '../core/ports';
import {
  parseEnvironment,
  parseJsonAs,
  promotionRecordSchema,
  registryKeys,
  resolveModelRef,
  type Environment,
  type ModelRef,
  type PromotionRecord,
} from '../core/registry';
import {
  checkModelIntegrity,
  moveOutputs,
  movePointer,
  moveSummary,
  PROMOTE_OUTPUTS,
  requireReasonForOverride,
} from './promote';
import {
  actorOf,
  DEEP_VERIFY_OPTION,
  listAll,
  MODEL_NAME_OPTION,
  MODEL_PREFIX_OPTION,
  OVERRIDE_ORDER_OPTION,
  readPointer,
  REASON_OPTION,
  configScope,
  storeRoot,
} from './registry-context';
import { CONFIG_PATH_OPTION, ENVIRONMENT_OPTION, STORE_OPTIONS } from './common-options';
import { registryDemotion } from './registry-mirror';
import { REGISTRY_MIRROR_OPTIONS } from './sagemaker-options';
import type { CommandContext, CommandDef, CommandResult } from './types';

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list)
  ...STORE_OPTIONS,
  CONFIG_PATH_OPTION,
  ENVIRONMENT_OPTION,
  MODEL_PREFIX_OPTION,
  MODEL_NAME_OPTION,
  OVERRIDE_ORDER_OPTION,
  REASON_OPTION,
  DEEP_VERIFY_OPTION,
  ...REGISTRY_MIRROR_OPTIONS,
]);

/** The append-only history of one environment, oldest first; damaged records are skipped with a warning. */
export async function readHistory(
  ctx: CommandContext,
  store: ObjectStore,
  scope: string,
  env: Environment,
): Promise<PromotionRecord[]> {
  const out: PromotionRecord[] = [];
  for (const o of await listAll(store, registryKeys.historyDir(scope, env))) {
    const got = await store.get(o.key);
    if (!got) continue;
    try {
      out.push(parseJsonAs(promotionRecordSchema, got.body.toString('utf8'), store.uri(o.key)));
    } catch (err) {
      ctx.deps.logger.warn(`skipping ${(err as Error).message}`);
    }
  }
  return out.sort((a, b) => a.seq - b.seq);
}

async function hasObjects(store: ObjectStore, prefix: string): Promise<boolean> {
  const it = store.list(prefix)[Symbol.asyncIterator]();
  const first = await it.next();
  await it.return?.();
  return !first.done;
}

/**
 * Without model-prefix: the latest model promoted to the environment before the current one that was not
 * itself rolled back and is still in the store. Each demote therefore steps back one model.
 */
async function previousModel(
  store: ObjectStore,
  history: PromotionRecord[],
  current: string,
): Promise<ModelRef | undefined> {
  const rolledBack = new Set(
    history.filter((r) => r.action === 'demote' && r.previousPrefix).map((r) => r.previousPrefix!),
  );
  for (const r of [...history].reverse()) {
    if (r.action !== 'promote' || r.prefix === current || rolledBack.has(r.prefix)) continue;
    const ref = resolveModelRef(r.prefix, '', '');
    if (await hasObjects(store, ref.folder)) return ref;
  }
  return undefined;
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const env = parseEnvironment(ctx.options.string('environment'));
  const reason = requireReasonForOverride(ctx);
  const mirror = registryDemotion(ctx);
  const store = ctx.deps.store();
  const given = ctx.options.string('model-prefix');
  const target0 = given ? resolveModelRef(given, storeRoot(ctx), store.uri('')) : undefined;
  const scope = target0?.scope ?? (await configScope(ctx));
  const current = await readPointer(store, scope, env);
  if (!current.pointer)
    throw new UserError(
      `${env} has no current model (no ${store.uri(registryKeys.pointer(scope, env))}); nothing to demote`,
    );
  const history = await readHistory(ctx, store, scope, env);
  const target = target0 ?? (await previousModel(store, history, current.pointer.prefix));
  if (!target)
    throw new UserError(
      `no earlier model of ${env} is left to go back to from ${current.pointer.prefix}; name one with model-prefix`,
    );
  const override: string[] = [];
  if (target.folder !== current.pointer.prefix) {
    const markers = await checkModelIntegrity(ctx, target);
    const wasThere = markers.has(env) || history.some((r) => r.prefix === target.folder);
    if (!wasThere) {
      const problem = `${target.folder} was never in ${env}`;
      if (!ctx.options.bool('override-order'))
        throw new UserError(
          `cannot demote ${env} to ${problem}; promote it instead, or set override-order with a reason`,
        );
      override.push(`order: ${problem}`);
    }
  }
  const demoted = current.pointer.prefix;
  const result = await movePointer(store, target, env, current, (seq, previous) => ({
    schemaVersion: 1,
    seq,
    action: 'demote',
    environment: env,
    prefix: target.folder,
    previousPrefix: previous,
    at: ctx.deps.clock.now().toISOString(),
    actor: actorOf(ctx),
    runUrl: ctx.deps.ci.runUrl,
    reason,
    override: override.length > 0 ? override : undefined,
  }));
  // deployments that look for the marker must not find the rolled-back model any more
  if (result.changed) await store.deleteMany([registryKeys.marker(demoted, env)]);
  const mirrored =
    result.changed && mirror ? await mirror(resolveModelRef(demoted, '', ''), target, env) : [];
  const uri = store.uri(target.folder);
  const text = result.changed
    ? `${env} rolled back from ${demoted} to ${target.folder} (record #${result.record.seq})`
    : `${target.folder} is already the ${env} model; nothing to do`;
  const summary = moveSummary(`demote ${env}`, result, uri) + mirrored.map((l) => `\n${l}\n`).join('');
  return { outputs: moveOutputs(result, uri), summary, text };
}

export const demoteCommand: CommandDef = {
  name: 'demote',
  summary: 'Roll an environment back to an earlier model (the previous one by default), recorded.',
  options: OPTIONS,
  outputs: PROMOTE_OUTPUTS,
  run,
};
