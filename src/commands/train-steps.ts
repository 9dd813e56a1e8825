import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { formatDuration } from '../core/duration';
import { messageOf, PipelineError, UserError } from '../core/errors';
import { markdownTable, textTable } from '../core/markdown';
import { defineOptions } from '../core/options';
import type { Logger, ObjectStore, RemoteShell } from '../core/ports';
import { shellQuote } from '../core/shell-quote';
import {
  hashPathsCommand,
  mergeJunit,
  HOST_STEP_DIR,
  packOutputsCommand,
  parseHashLines,
  stepCacheFolder,
  stepKey,
  STEP_OUTPUTS,
  STEP_RECORD,
  STORE_INPUT,
  unpackOutputsCommand,
  type Step,
  type StepGraph,
  type StepRecord,
} from '../core/steps';
import { trainCommandLine } from '../core/train';
import type { CommandContext } from './types';

/**
 * Runs the steps of a model config on the training host, in dependency order, each step's outputs cached in
 * the store under its content key. What it needs of the host is the shell port (RemoteShell) the single
 * train-command uses: EC2 over SSH, the local backend's folder, any later backend alike.
 */
/** Settings of step pipelines (`[[steps]]` in the model config); without steps they change nothing. */
export const STEP_OPTIONS = defineOptions([
  {
    name: 'no-cache',
    description:
      "Run every step of the config's `[[steps]]` pipeline even when the store holds outputs for its key (the outputs are cached again).",
    type: 'boolean',
    default: 'false',
    env: ['MODEL_PIPELINE_NO_CACHE'],
  },
  {
    name: 'parallel-steps',
    description:
      "How many independent steps of the config's `[[steps]]` pipeline may run at once on the training host (1: one after the other).",
    type: 'integer',
    default: '1',
    env: ['MODEL_PIPELINE_PARALLEL_STEPS'],
  },
]);

export type StepShell = Pick<RemoteShell, 'exec' | 'pushFile' | 'pullFile'>;

export interface StepRunRequest {
  graph: StepGraph;
  shell: StepShell;
  store: ObjectStore;
  /** The store prefix: caches live under `<root>/_steps/<key>/`. */
  storeRoot: string;
  /** The repository copy on the host; commands run there. */
  repoDir: string;
  /** Variables every step sees (MODEL_PIPELINE_CONFIG, …); MODEL_PIPELINE_STEP is added. */
  env: Record<string, string>;
  logger: Logger;
  /** A local scratch folder (archives pass through it). */
  work: string;
  /** How many independent steps may run at once (1: one after the other). */
  parallel: number;
  /** Run every step, ignoring (but refreshing) the cache. */
  noCache: boolean;
  timeoutSeconds: number;
  signal: AbortSignal;
}

export type StepStatus = 'ran' | 'cached' | 'failed' | 'skipped';

export interface StepRow {
  name: string;
  status: StepStatus;
  key?: string;
  seconds: number;
  outputs: string[];
  validate: boolean;
  detail?: string;
}

export interface StepsOutcome {
  rows: StepRow[];
  /** Of the steps that finished (ran or cached), for the manifest. */
  records: StepRecord[];
  /** Local copies of validate steps' JUnit files, by step, pass or fail. */
  junit: { step: string; file: string }[];
  /** The first failure, when a step failed; later steps did not run. */
  failure?: { step: string; validate: boolean; message: string };
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Runs `items` with at most `limit` at a time, in order of start. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

export async function runSteps(r: StepRunRequest): Promise<StepsOutcome> {
  const log = r.logger;
  const byName = new Map(r.graph.steps.map((s) => [s.name, s]));
  const keys = new Map<string, string>();
  const rows = new Map<string, StepRow>();
  const records: StepRecord[] = [];
  const junit: { step: string; file: string }[] = [];
  const storeInputs = new Map<string, Promise<string>>();
  let failure: StepsOutcome['failure'];
  const inRepo = (cmd: string): string => `cd ${shellQuote(r.repoDir)} && ${cmd}`;

  /** A host command whose output lines are kept (and logged at debug level). */
  const hostLines = async (what: string, cmd: string): Promise<{ exitCode: number; lines: string[] }> => {
    const lines: string[] = [];
    const x = await r.shell.exec(inRepo(cmd), {
      timeoutSeconds: 3600,
      signal: r.signal,
      onOutput: (l) => lines.push(l),
    });
    if (x.exitCode !== 0 && x.exitCode !== 44)
      throw new PipelineError(
        `${what} failed on the host (exit ${x.exitCode}): ${lines.slice(-3).join(' ')}`,
      );
    return { exitCode: x.exitCode, lines };
  };

  /** Downloads a store input once per run, places it in the repository copy, returns its sha256. */
  const bringStoreInput = (key: string, dest: string): Promise<string> => {
    let p = storeInputs.get(`${key}\0${dest}`);
    if (!p) {
      p = (async () => {
        if (!(await r.store.head(key)))
          throw new PipelineError(
            `step input ${STORE_INPUT}${key} is not in the store (${r.store.uri(key)})`,
          );
        const local = path.join(
          r.work,
          'inputs',
          createHash('sha256').update(key).digest('hex').slice(0, 16),
        );
        await r.store.downloadFile(key, local);
        await r.shell.pushFile(local, path.posix.join(r.repoDir, dest));
        return sha256File(local);
      })();
      storeInputs.set(`${key}\0${dest}`, p);
    }
    return p;
  };

  const keyOf = async (step: Step): Promise<string> => {
    const hashes = new Map<string, string>();
    for (const input of step.inputs)
      if (input.kind === 'store')
        hashes.set(STORE_INPUT + input.key, await bringStoreInput(input.key, input.path));
    const paths = step.inputs.filter((i) => i.kind === 'path').map((i) => i.path);
    if (paths.length > 0) {
      const h = parseHashLines((await hostLines('hashing the inputs', hashPathsCommand(paths))).lines);
      if (h.missing.length > 0)
        throw new PipelineError(
          `step ${step.name}: input ${h.missing.join(', ')} is not in the repository copy on the host, and no step writes it`,
        );
      for (const p of paths) {
        const v = h.hashes.get(p);
        if (!v) throw new PipelineError(`step ${step.name}: the host reported no hash for input ${p}`);
        hashes.set(p, v);
      }
    }
    return stepKey({
      command: step.command,
      outputs: step.outputs,
      inputs: hashes,
      upstream: new Map(step.needs.map((n) => [n, keys.get(n)!])),
    });
  };

  const archiveOnHost = (key: string): string => `${HOST_STEP_DIR}/${key}.tar.gz`;

  /** The cached outputs back in the repository copy; false when the cache holds no complete entry. */
  const restore = async (step: Step, key: string): Promise<boolean> => {
    const folder = stepCacheFolder(r.storeRoot, key);
    if (!(await r.store.head(folder + STEP_RECORD))) return false;
    if (step.outputs.length > 0) {
      const local = path.join(r.work, 'cache', `${key}.tar.gz`);
      await r.store.downloadFile(folder + STEP_OUTPUTS, local);
      await r.shell.pushFile(local, path.posix.join(r.repoDir, archiveOnHost(key)));
      await hostLines('unpacking cached outputs', unpackOutputsCommand(step.outputs, archiveOnHost(key)));
      await fs.rm(local, { force: true });
    }
    return true;
  };

  /** Outputs into the store under the key; step.json last, so a half-written entry is never a hit. */
  const save = async (step: Step, key: string, seconds: number): Promise<void> => {
    const folder = stepCacheFolder(r.storeRoot, key);
    if (step.outputs.length > 0) {
      const local = path.join(r.work, 'cache', `${key}.tar.gz`);
      // packed when the outputs were checked; the repository copy (and the archive in it) is replaced next run
      await r.shell.pullFile(path.posix.join(r.repoDir, archiveOnHost(key)), local);
      await r.store.uploadFile(folder + STEP_OUTPUTS, local);
      await fs.rm(local, { force: true });
    }
    const record = {
      name: step.name,
      key,
      command: step.command,
      outputs: step.outputs,
      seconds,
      upstream: Object.fromEntries(step.needs.map((n) => [n, keys.get(n)])),
    };
    await r.store.put(folder + STEP_RECORD, JSON.stringify(record, null, 2) + '\n', {
      contentType: 'application/json',
    });
  };

  /** Outputs that are not there; when all are, they are packed for the cache in the same round trip. */
  const missingOutputs = async (step: Step, key: string): Promise<string[]> => {
    if (step.outputs.length === 0) return [];
    const x = await hostLines('packing the outputs', packOutputsCommand(step.outputs, archiveOnHost(key)));
    return parseHashLines(x.lines).missing;
  };

  const pullJunit = async (step: Step): Promise<void> => {
    if (!step.junit) return;
    const local = path.join(r.work, 'junit', `${step.name}.xml`);
    try {
      await r.shell.pullFile(path.posix.join(r.repoDir, step.junit), local);
      junit.push({ step: step.name, file: local });
    } catch {
      log.warn(`validate step ${step.name} left no ${step.junit}`);
    }
  };

  const runOne = async (step: Step, buffered: boolean): Promise<void> => {
    const started = Date.now();
    const key = await keyOf(step);
    keys.set(step.name, key);
    const short = key.slice(0, 12);
    if (!r.noCache && (await restore(step, key))) {
      const seconds = (Date.now() - started) / 1000;
      log.info(
        `step ${step.name}: cache hit ${short}, outputs restored (${step.outputs.join(', ') || 'none'})`,
      );
      rows.set(step.name, {
        name: step.name,
        status: 'cached',
        key,
        seconds,
        outputs: step.outputs,
        validate: step.validate,
      });
      records.push({
        name: step.name,
        key,
        status: 'cached',
        cacheHit: true,
        seconds: Math.round(seconds),
        outputs: step.outputs,
      });
      await pullJunit(step);
      return;
    }
    const command = trainCommandLine({
      repoDir: r.repoDir,
      command: step.command,
      env: { ...r.env, MODEL_PIPELINE_STEP: step.name, MODEL_PIPELINE_STEP_KEY: key },
    });
    const lines: string[] = [];
    const exec = async (): Promise<number> => {
      if (!buffered) log.info(`$ ${step.command}`);
      const x = await r.shell.exec(command, {
        timeoutSeconds: r.timeoutSeconds,
        signal: r.signal,
        onOutput: (l) => (buffered ? lines.push(l) : log.info(l)),
      });
      return x.exitCode;
    };
    const title = `step ${step.name} (${r.noCache ? 'no-cache' : `key ${short}`})`;
    const exitCode = buffered
      ? await exec().then((code) =>
          log.group(title, async () => {
            log.info(`$ ${step.command}`);
            for (const l of lines) log.info(l);
            return code;
          }),
        )
      : await log.group(title, exec);
    const seconds = (Date.now() - started) / 1000;
    const row: StepRow = {
      name: step.name,
      status: 'ran',
      key,
      seconds,
      outputs: step.outputs,
      validate: step.validate,
    };
    rows.set(step.name, row);
    await pullJunit(step);
    if (exitCode !== 0) {
      row.status = 'failed';
      row.detail = `exit ${exitCode}`;
      failure ??= {
        step: step.name,
        validate: step.validate,
        message: `${step.validate ? 'validate step' : 'step'} ${step.name} ("${step.command}") failed with exit code ${exitCode} after ${formatDuration(seconds)}; see its output above`,
      };
      return;
    }
    const missing = await missingOutputs(step, key);
    if (missing.length > 0) {
      row.status = 'failed';
      row.detail = `no ${missing.join(', ')}`;
      failure ??= {
        step: step.name,
        validate: step.validate,
        message: `step ${step.name} succeeded but left no ${missing.join(', ')} (its outputs in the config)`,
      };
      return;
    }
    records.push({
      name: step.name,
      key,
      status: 'ran',
      cacheHit: false,
      seconds: Math.round(seconds),
      outputs: step.outputs,
    });
    try {
      await save(step, key, Math.round(seconds));
      log.info(`step ${step.name}: outputs cached under ${stepCacheFolder(r.storeRoot, key)}`);
    } catch (err) {
      // the step's work stands; only a later rerun loses the shortcut
      log.warn(`step ${step.name}: could not cache its outputs: ${messageOf(err)}`);
    }
  };

  for (const level of r.graph.levels) {
    if (failure) break;
    const buffered = r.parallel > 1 && level.length > 1;
    await pool(level, r.parallel, async (name) => {
      // a sibling that failed stops what has not started; running siblings finish and are cached
      if (failure) return;
      try {
        await runOne(byName.get(name)!, buffered);
      } catch (err) {
        if (r.signal.aborted) throw err;
        const step = byName.get(name)!;
        rows.set(name, {
          name,
          status: 'failed',
          key: keys.get(name),
          seconds: 0,
          outputs: step.outputs,
          validate: step.validate,
          detail: messageOf(err),
        });
        failure ??= { step: name, validate: step.validate, message: `step ${name}: ${messageOf(err)}` };
      }
    });
  }
  const ordered = r.graph.levels.flat().map(
    (name) =>
      rows.get(name) ?? {
        name,
        status: 'skipped' as const,
        seconds: 0,
        outputs: byName.get(name)!.outputs,
        validate: byName.get(name)!.validate,
      },
  );
  const order = new Map(r.graph.levels.flat().map((n, i) => [n, i]));
  records.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
  return { rows: ordered, records, junit, failure };
}

function tableRows(rows: readonly StepRow[]): string[][] {
  return rows.map((s) => [
    s.name + (s.validate ? ' (validate)' : ''),
    s.status + (s.detail ? `: ${s.detail}` : ''),
    s.status === 'skipped' ? '-' : formatDuration(Math.round(s.seconds)),
    s.outputs.join(', ') || '-',
    s.status === 'cached' ? 'hit' : s.status === 'skipped' || !s.key ? '-' : 'miss',
    s.key ? s.key.slice(0, 12) : '-',
  ]);
}

const HEADER = ['step', 'status', 'duration', 'outputs', 'cache', 'key'];

/** The step summary's table: one row per step. */
export function stepsMarkdown(rows: readonly StepRow[]): string {
  return markdownTable(HEADER, tableRows(rows));
}

export function stepsText(rows: readonly StepRow[]): string {
  return textTable(HEADER, tableRows(rows));
}

/** Store inputs of every step, checked before anything launches: a missing object must cost nothing. */
export async function checkStepInputs(
  graph: StepGraph,
  store: ObjectStore,
  configPath: string,
): Promise<void> {
  for (const s of graph.steps)
    for (const i of s.inputs)
      if (i.kind === 'store' && !(await store.head(i.key)))
        throw new UserError(
          `${configPath}: step "${s.name}" reads ${STORE_INPUT}${i.key}, which is not in the store (${store.uri(i.key)})`,
        );
}

/**
 * Train's use of the runner: the steps run, their table is logged; a failure throws (nothing of the model
 * is written) after a failed validate step's JUnit went to report-dir as benchmark_results.xml.
 */
export async function runTrainSteps(
  ctx: CommandContext,
  o: {
    graph: StepGraph;
    shell: StepShell;
    repoDir: string;
    env: Record<string, string>;
    work: string;
    timeoutSeconds: number;
  },
): Promise<StepsOutcome> {
  const log = ctx.deps.logger;
  const parallel = ctx.options.int('parallel-steps');
  if (parallel < 1) throw new UserError(`parallel-steps must be 1 or more, got ${parallel}`);
  log.info(
    `running ${o.graph.steps.length} step(s) in ${o.graph.levels.length} level(s): ${o.graph.levels.map((l) => l.join(' + ')).join(' -> ')}`,
  );
  const outcome = await runSteps({
    graph: o.graph,
    shell: o.shell,
    store: ctx.deps.store(),
    storeRoot: ctx.options.string('store-prefix') ?? '',
    repoDir: o.repoDir,
    env: o.env,
    logger: log,
    work: path.join(o.work, 'steps'),
    parallel,
    noCache: ctx.options.bool('no-cache'),
    timeoutSeconds: o.timeoutSeconds,
    signal: ctx.signal,
  });
  for (const line of stepsText(outcome.rows).split('\n')) log.info(line);
  if (outcome.failure) {
    if (outcome.failure.validate && outcome.junit.length > 0) {
      const xml = await mergedJunit(undefined, outcome);
      const reportDir = ctx.options.string('report-dir');
      if (reportDir) {
        const dir = path.resolve(ctx.deps.cwd, reportDir);
        await fs.mkdir(dir, { recursive: true });
        await fs.writeFile(path.join(dir, BENCHMARK_XML), xml);
        log.info(`validation report: ${path.join(dir, BENCHMARK_XML)}`);
      }
    }
    const skipped = outcome.rows.filter((r) => r.status === 'skipped').map((r) => r.name);
    const cached = outcome.records.length;
    throw new PipelineError(
      `${outcome.failure.message}.${skipped.length ? ` Not run: ${skipped.join(', ')}.` : ''} No model was written` +
        (cached > 0
          ? `; a rerun resumes after the ${cached} finished step(s), whose outputs are cached`
          : ''),
    );
  }
  return outcome;
}

export const BENCHMARK_XML = 'benchmark_results.xml';

/** benchmark_results.xml with the validate steps' JUnit suites added to the benchmark report's (if any). */
export async function mergedJunit(benchmarkXml: string | undefined, outcome: StepsOutcome): Promise<string> {
  const extra = await Promise.all(
    outcome.junit.map(async (j) => ({ step: j.step, xml: await fs.readFile(j.file, 'utf8') })),
  );
  return mergeJunit(benchmarkXml, extra);
}
