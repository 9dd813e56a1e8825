import { MODEL_SOURCES_OPTION } from './model-context';
import {
  BENCHMARK_JSON,
  COMPARISON_HEADER,
  compareBenchmarks,
  comparisonRows,
  type MetricComparison,
} from '../core/benchmark';
import { PipelineError, PreconditionFailedError, UserError } from '../core/errors';
import { markdownTable, textTable } from '../core/markdown';
import { defineOptions, type OutputSpec } from '../core/options';
import type { ObjectStore } from '../core/ports';
import {
  checkPromotionOrder,
  isEnvironment,
  parseEnvironment,
  registryKeys,
  type Environment,
  type EnvironmentPointer,
  type ModelRef,
  type PromotionRecord,
} from '../core/registry';
import {
  actorOf,
  ALLOW_FAILED_BENCHMARK_OPTION,
  DEEP_VERIFY_OPTION,
  listFolder,
  loadThresholds,
  MODEL_NAME_OPTION,
  MODEL_PREFIX_OPTION,
  modelRefFrom,
  OVERRIDE_ORDER_OPTION,
  putOnce,
  readManifest,
  readPointer,
  REASON_OPTION,
  recordedMetrics,
  THRESHOLDS_OPTION,
  verifyModelFiles,
} from './registry-context';
import { ENVIRONMENT_OPTION, REPO_OPTIONS, STORE_OPTIONS } from './common-options';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';
import { whileClaimed } from './retiring';
import { REGISTRY_MIRROR_OPTIONS } from './sagemaker-options';
import { registryMirror } from './registry-mirror';

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list)
  ...STORE_OPTIONS,
  ...REPO_OPTIONS,
  ENVIRONMENT_OPTION,
  MODEL_PREFIX_OPTION,
  MODEL_NAME_OPTION,
  OVERRIDE_ORDER_OPTION,
  REASON_OPTION,
  THRESHOLDS_OPTION,
  ALLOW_FAILED_BENCHMARK_OPTION,
  DEEP_VERIFY_OPTION,
  MODEL_SOURCES_OPTION,
  ...REGISTRY_MIRROR_OPTIONS,
]);

export const PROMOTE_OUTPUTS: readonly OutputSpec[] = outputsOf(
  'model-prefix',
  'environment',
  'model-uri',
  'previous-prefix',
  'changed',
);

export interface MoveResult {
  ref: ModelRef;
  env: Environment;
  previous?: string;
  changed: boolean;
  record: PromotionRecord;
}

/**
 * Moves an environment pointer to ref with compare-and-swap on the pointer read at `current`: of two runs
 * that read the same pointer, exactly one write succeeds. The marker and the history record follow the
 * pointer; a re-run that finds the pointer already moved repairs them and reports `changed: false`.
 */
export async function movePointer(
  store: ObjectStore,
  ref: ModelRef,
  env: Environment,
  current: { pointer?: EnvironmentPointer; etag?: string },
  makeRecord: (seq: number, previous: string | undefined) => PromotionRecord,
): Promise<MoveResult> {
  if (current.pointer?.prefix === ref.folder) {
    await finishMove(store, ref, env, current.pointer.record);
    return {
      ref,
      env,
      previous: current.pointer.record.previousPrefix,
      changed: false,
      record: current.pointer.record,
    };
  }
  const seq = (current.pointer?.seq ?? 0) + 1;
  const record = makeRecord(seq, current.pointer?.prefix);
  // under a claim: rotate either sees it and keeps the folder, or this run sees rotate's mark and stops
  return whileClaimed(store, ref.folder, `point ${env} at`, new Date(record.at), () =>
    writePointer(store, ref, env, current, record),
  );
}

async function writePointer(
  store: ObjectStore,
  ref: ModelRef,
  env: Environment,
  current: { pointer?: EnvironmentPointer; etag?: string },
  record: PromotionRecord,
): Promise<MoveResult> {
  const pointerKey = registryKeys.pointer(ref.scope, env);
  const seq = record.seq;
  const pointer: EnvironmentPointer = { schemaVersion: 1, environment: env, prefix: ref.folder, seq, record };
  try {
    await store.put(pointerKey, JSON.stringify(pointer, null, 2), {
      ...(current.etag !== undefined ? { ifMatch: current.etag } : { ifNoneMatch: true }),
      contentType: 'application/json',
    });
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
    const now = await readPointer(store, ref.scope, env);
    if (now.pointer?.prefix === ref.folder) {
      // a concurrent run made the same move: nothing left to win
      await finishMove(store, ref, env, now.pointer.record);
      return {
        ref,
        env,
        previous: now.pointer.record.previousPrefix,
        changed: false,
        record: now.pointer.record,
      };
    }
    throw new PipelineError(
      `another run changed ${env} while this one was promoting: it now points at ${now.pointer?.prefix ?? 'nothing'}` +
        ` (seq ${now.pointer?.seq ?? 0}). This run changed nothing; re-run it if ${ref.folder} should still go to ${env}.`,
    );
  }
  await finishMove(store, ref, env, record);
  return { ref, env, previous: current.pointer?.prefix, changed: true, record };
}

async function finishMove(
  store: ObjectStore,
  ref: ModelRef,
  env: Environment,
  record: PromotionRecord,
): Promise<void> {
  const marker = registryKeys.marker(ref.folder, env);
  if (!(await store.head(marker))) await store.put(marker, Buffer.alloc(0));
  await putOnce(store, registryKeys.history(ref.scope, env, record.seq), JSON.stringify(record, null, 2));
}

async function metricsOf(store: ObjectStore, folder: string): Promise<Map<string, number> | undefined> {
  return (await recordedMetrics(store, folder))?.metrics;
}

async function benchmarkGate(
  ctx: CommandContext,
  ref: ModelRef,
  env: Environment,
  currentPrefix: string | undefined,
): Promise<MetricComparison[] | undefined> {
  const file = ctx.options.string('thresholds-file');
  if (!file) return undefined;
  const store = ctx.deps.store();
  const thresholds = await loadThresholds(ctx.deps.cwd, file);
  const candidate = await metricsOf(store, ref.folder);
  if (!candidate)
    throw new PipelineError(
      `the benchmark gate needs the model's metrics (${BENCHMARK_JSON} or metrics.json in ${store.uri(ref.folder)}), which do not exist; run the benchmark first`,
    );
  const current =
    currentPrefix && currentPrefix !== ref.folder ? await metricsOf(store, currentPrefix) : undefined;
  const { rows, verdict } = compareBenchmarks(thresholds, candidate, current);
  const table = textTable(COMPARISON_HEADER, comparisonRows(rows));
  ctx.deps.logger.info(`benchmark gate against ${currentPrefix ?? 'no current model'}:\n${table}`);
  if (verdict === 'fail') {
    const failed = rows.filter((r) => r.verdict === 'fail').map((r) => `${r.metric}: ${r.note}`);
    throw new PipelineError(
      `benchmark gate failed for ${ref.folder} -> ${env}: ${failed.join('; ')}. Nothing was changed.\n${table}`,
    );
  }
  for (const r of rows.filter((x) => x.verdict === 'warn'))
    ctx.deps.logger.warn(`benchmark ${r.metric}: ${r.note}`);
  return rows;
}

/** Gate: the folder must hold a manifest and exactly the files it lists. */
export async function checkModelIntegrity(ctx: CommandContext, ref: ModelRef): Promise<Set<string>> {
  const store = ctx.deps.store();
  const objects = await listFolder(store, ref);
  const manifest = await readManifest(store, ref);
  const problems = await verifyModelFiles(store, ref, manifest, objects, {
    deep: ctx.options.bool('deep-verify'),
    logger: ctx.deps.logger,
  });
  if (problems.length > 0)
    throw new PipelineError(
      `${store.uri(ref.folder)} does not match its manifest: ${problems.join('; ')}. Nothing was changed.`,
    );
  return new Set(objects.map((o) => o.key.slice(ref.folder.length)).filter(isEnvironment));
}

/**
 * A model whose manifest records a failed benchmark goes nowhere unless allow-failed-benchmark (with a
 * reason) says so; the override text is what the promotion record keeps.
 */
async function failedBenchmark(
  ctx: CommandContext,
  ref: ModelRef,
  reason: string | undefined,
): Promise<string | undefined> {
  const manifest = await readManifest(ctx.deps.store(), ref);
  if (manifest.benchmark?.passed !== false) return undefined;
  const what = `benchmark: ${ref.folder} failed its benchmark (manifest benchmark.passed=false${manifest.benchmark.file ? `, ${manifest.benchmark.file}` : ''})`;
  if (!ctx.options.bool('allow-failed-benchmark'))
    throw new UserError(
      `cannot promote ${ref.folder}: it failed its benchmark (manifest benchmark.passed=false). Promote a model that passed, or set allow-failed-benchmark with a reason.`,
    );
  if (!reason)
    throw new UserError(
      'allow-failed-benchmark needs a reason: set reason to say why the failed model goes on',
    );
  return what;
}

export function requireReasonForOverride(ctx: CommandContext): string | undefined {
  const reason = ctx.options.string('reason');
  if (ctx.options.bool('override-order') && !reason)
    throw new UserError('override-order needs a reason: set reason to say why the order is skipped');
  return reason;
}

export function moveSummary(
  title: string,
  r: MoveResult,
  uri: string,
  comparison?: MetricComparison[],
): string {
  const rows = [
    ['environment', r.env],
    ['model', r.ref.folder],
    ['uri', uri],
    ['previous', r.previous ?? '-'],
    ['changed', r.changed ? 'yes' : 'no (already there)'],
    ['by', r.record.actor ?? '-'],
    ['at', r.record.at],
    ['record', `#${r.record.seq}`],
  ];
  if (r.record.reason) rows.push(['reason', r.record.reason]);
  if (r.record.override?.length) rows.push(['override', r.record.override.join('; ')]);
  let md = `### ${title}\n\n${markdownTable(['', ''], rows)}\n`;
  if (comparison)
    md += `\n#### benchmark gate\n\n${markdownTable(COMPARISON_HEADER, comparisonRows(comparison))}\n`;
  return md;
}

export function moveOutputs(r: MoveResult, uri: string): Record<string, string> {
  return {
    'model-prefix': r.ref.folder,
    environment: r.env,
    'model-uri': uri,
    'previous-prefix': r.previous ?? '',
    changed: String(r.changed),
  };
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const env = parseEnvironment(ctx.options.string('environment'));
  const reason = requireReasonForOverride(ctx);
  const mirror = registryMirror(ctx);
  const store = ctx.deps.store();
  const ref = await modelRefFrom(ctx, { config: 'always' });
  const current = await readPointer(store, ref.scope, env);
  const uri = store.uri(ref.folder);

  let comparison: MetricComparison[] | undefined;
  const override: string[] = [];
  if (current.pointer?.prefix === ref.folder) await listFolder(store, ref);
  else {
    const markers = await checkModelIntegrity(ctx, ref);
    const order = checkPromotionOrder(env, markers, ctx.options.bool('override-order'));
    if (!order.ok)
      throw new UserError(
        `cannot promote ${ref.folder}: ${order.problem}. Promote it to ${order.required} first, or set override-order with a reason.`,
      );
    if (order.overridden) override.push(order.overridden);
    const failed = await failedBenchmark(ctx, ref, reason);
    if (failed) override.push(failed);
    comparison = await benchmarkGate(ctx, ref, env, current.pointer?.prefix);
  }
  const result = await movePointer(store, ref, env, current, (seq, previous) => ({
    schemaVersion: 1,
    seq,
    action: 'promote',
    environment: env,
    prefix: ref.folder,
    previousPrefix: previous,
    fromEnvironment: checkPromotionOrder(env, new Set(), true).required,
    at: ctx.deps.clock.now().toISOString(),
    actor: actorOf(ctx),
    runUrl: ctx.deps.ci.runUrl,
    reason,
    override: override.length > 0 ? override : undefined,
  }));
  const mirrored = mirror && (await mirror(ref, env));
  const text = result.changed
    ? `promoted ${ref.folder} to ${env} (record #${result.record.seq}; previous ${result.previous ?? 'none'})`
    : `${ref.folder} is already the ${env} model (record #${result.record.seq}); nothing to do`;
  return {
    outputs: moveOutputs(result, uri),
    summary: moveSummary(`promote to ${env}`, result, uri, comparison) + (mirrored ? `\n${mirrored}\n` : ''),
    text,
  };
}

export const promoteCommand: CommandDef = {
  name: 'promote',
  summary: 'Promote a model folder to an environment (order and integrity gates, race-safe, recorded).',
  options: OPTIONS,
  outputs: PROMOTE_OUTPUTS,
  run,
};
