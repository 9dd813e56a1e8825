import { MODEL_SOURCES_OPTION } from './model-context';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { BENCHMARK_JSON, BENCHMARK_XML, type Thresholds } from '../core/benchmark';
import {
  buildBenchmarkReport,
  type BenchmarkAnnotation,
  type BenchmarkReport,
} from '../core/benchmark-report';
import { UserError } from '../core/errors';
import { defineOptions } from '../core/options';
import type { Logger, ObjectStore } from '../core/ports';
import { parseEnvironment, resolveModelRef, type Environment } from '../core/registry';
import { DEST_OPTION } from './download';
import {
  ALIAS_OPTION,
  loadThresholds,
  MODEL_NAME_OPTION,
  MODEL_PREFIX_OPTION,
  modelRefFrom,
  readManifest,
  readPointer,
  recordedMetrics,
  storedMetrics,
  THRESHOLDS_OPTION,
} from './registry-context';
import { DEFAULT_READ_ENVIRONMENT, ENVIRONMENT_OPTION, REPO_OPTIONS, STORE_OPTIONS } from './common-options';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';

/** The current model of an environment and its recorded metrics; undefined when there is nothing to compare. */
async function currentModel(
  store: ObjectStore,
  scope: string,
  env: Environment,
  candidate: string,
): Promise<{ prefix: string; metrics: Map<string, number> } | undefined> {
  const { pointer } = await readPointer(store, scope, env);
  if (!pointer || pointer.prefix === candidate) return undefined;
  const got = await recordedMetrics(store, pointer.prefix);
  return { prefix: pointer.prefix, metrics: got?.metrics ?? new Map() };
}

/** Prints failures as error annotations and warnings as warning annotations (GitHub turns both into marks). */
export function emitAnnotations(logger: Logger, annotations: BenchmarkAnnotation[]): void {
  for (const a of annotations) {
    const line = `${a.title}: ${a.message}`;
    if (a.level === 'error') logger.error(line);
    else logger.warn(line);
  }
}

async function readLocal(cwd: string, file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(path.resolve(cwd, file), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new UserError(`cannot read metrics file ${file}: ${(err as Error).message}`);
  }
}

/**
 * The benchmark report of a freshly trained model, for train to call after the training command: reads the
 * metrics file the run wrote (local path, relative to the working directory) and the thresholds file, and
 * compares with the model `environment` runs now. Bad metrics files throw a UserError; nothing claims a
 * pass it did not check. Upload `xml` as benchmark_results.xml and record `passed` in the manifest.
 */
export async function benchmarkArtifacts(
  ctx: CommandContext,
  store: ObjectStore,
  prefix: string,
  metricsPath: string | undefined,
  thresholdsPath?: string,
  environment: Environment = DEFAULT_READ_ENVIRONMENT,
): Promise<{
  xml: string;
  passed: boolean;
  summary: string;
  annotations: BenchmarkAnnotation[];
  report: BenchmarkReport;
}> {
  const ref = resolveModelRef(prefix, '', '');
  const metricsText = metricsPath ? await readLocal(ctx.deps.cwd, metricsPath) : undefined;
  const thresholds = thresholdsPath ? await loadThresholds(ctx.deps.cwd, thresholdsPath) : undefined;
  const report = buildBenchmarkReport({
    metricsText,
    metricsFile: metricsPath ?? '(metrics-file is empty)',
    thresholds,
    modelPrefix: ref.folder,
    environment,
    current: await currentModel(store, ref.scope, environment, ref.folder),
    at: ctx.deps.clock.now(),
  });
  return {
    xml: report.xml,
    passed: report.passed,
    summary: report.summary,
    annotations: report.annotations,
    report,
  };
}

/**
 * The JUnit benchmark report of a finished training (both engines): against the thresholds file and the model the target environment runs now,
 * written to `<work>/out/benchmark_results.xml` and copied to report-dir. A metrics file that cannot be read
 * marks the model failed (promote then refuses it) instead of throwing the trained model away.
 */
export async function trainBenchmarkReport(
  ctx: CommandContext,
  prefix: string,
  metricsFile: string,
  work: string,
): Promise<{ passed: boolean; xmlFile?: string; summary?: string }> {
  const log = ctx.deps.logger;
  const environment = parseEnvironment(ctx.options.string('environment') || DEFAULT_READ_ENVIRONMENT);
  try {
    const r = await benchmarkArtifacts(
      ctx,
      ctx.deps.store(),
      prefix,
      metricsFile,
      ctx.options.string('thresholds-file') || undefined,
      environment,
    );
    emitAnnotations(log, r.annotations);
    const xmlFile = path.join(work, 'out', BENCHMARK_XML);
    await fs.mkdir(path.dirname(xmlFile), { recursive: true });
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

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list)
  ...STORE_OPTIONS,
  ...REPO_OPTIONS,
  ENVIRONMENT_OPTION,
  MODEL_PREFIX_OPTION,
  MODEL_NAME_OPTION,
  ALIAS_OPTION,
  THRESHOLDS_OPTION,
  DEST_OPTION,
  MODEL_SOURCES_OPTION,
]);

async function run(ctx: CommandContext): Promise<CommandResult> {
  const store = ctx.deps.store();
  const env = parseEnvironment(ctx.options.string('environment') || DEFAULT_READ_ENVIRONMENT);
  const ref = await modelRefFrom(ctx, { alias: true, config: 'always' });
  const manifest = await readManifest(store, ref);
  const file = ctx.options.string('thresholds-file');
  const thresholds: Thresholds | undefined = file ? await loadThresholds(ctx.deps.cwd, file) : undefined;
  const stored = await storedMetrics(store, ref.folder, manifest);
  const report = buildBenchmarkReport({
    metricsText: stored?.text,
    metricsFile: stored
      ? store.uri(stored.key)
      : `${BENCHMARK_JSON} or metrics.json in ${store.uri(ref.folder)}`,
    thresholds,
    modelPrefix: ref.folder,
    environment: env,
    current: await currentModel(store, ref.scope, env, ref.folder),
    at: ctx.deps.clock.now(),
  });
  const dest = path.resolve(ctx.deps.cwd, ctx.options.string('dest') || ref.id.name);
  await fs.mkdir(dest, { recursive: true });
  const xmlFile = path.join(dest, BENCHMARK_XML);
  await fs.writeFile(xmlFile, report.xml);
  emitAnnotations(ctx.deps.logger, report.annotations);
  if (manifest.benchmark && manifest.benchmark.passed !== report.passed)
    ctx.deps.logger.warn(
      `the manifest of ${ref.folder} records benchmark.passed=${manifest.benchmark.passed} from training; this report says ${report.passed} (the manifest is not changed)`,
    );
  return {
    outputs: {
      'model-prefix': ref.folder,
      passed: String(report.passed),
      'report-file': xmlFile,
    },
    summary: report.summary,
    text: `${report.text}\nwrote ${xmlFile}`,
  };
}

export const benchmarkReportCommand: CommandDef = {
  name: 'benchmark-report',
  summary:
    'Benchmark report of a stored model: JUnit benchmark_results.xml and a table against the current model of `environment` (default production).',
  options: OPTIONS,
  outputs: outputsOf('model-prefix', 'passed', 'report-file'),
  run,
};
