import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { UserError } from './errors';
import { shellQuote } from './shell-quote';

/**
 * Pipelines of steps in the model config (`[[steps]]` or `[steps.<name>]` beside `version`): parsing, graph
 * checks, the order they run in and the content key each step's outputs are cached under. Pure: the runner
 * (src/commands/train-steps.ts) brings the shell and the store.
 */

/** Where a step input comes from. */
export type StepInput =
  /** A file or folder in the repository copy on the training host; hashed there before the step runs. */
  | { kind: 'path'; path: string }
  /** An object of the store, brought next to the repository as its base name (like data-key). */
  | { kind: 'store'; key: string; path: string };

export interface Step {
  name: string;
  command: string;
  /** Declared needs plus the steps whose outputs this step reads, sorted, without duplicates. */
  needs: string[];
  inputs: StepInput[];
  /** Files or folders, relative to the repository copy, the step writes (the junit file included). */
  outputs: string[];
  /** A gate: when it fails no model folder is written. */
  validate: boolean;
  /** JUnit XML a validate step writes; merged into benchmark_results.xml. */
  junit?: string;
}

export interface StepGraph {
  /** In declaration order. */
  steps: Step[];
  /** Groups of steps that can run at the same time; every step's needs are in earlier groups. */
  levels: string[][];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const SAFE_PATH = /^[A-Za-z0-9_./-]+$/;
const STEP_KEYS = new Set(['name', 'command', 'needs', 'inputs', 'outputs', 'validate', 'junit']);
export const STORE_INPUT = 'store:';

function fail(where: string, message: string): never {
  throw new UserError(`${where}: ${message}`);
}

/** A plain relative path, normalised (`./a/b/` -> `a/b`); anything else is a one-line UserError. */
function relPath(value: unknown, where: string, what: string): string {
  if (typeof value !== 'string') fail(where, `${what} must be a string`);
  const v = value.trim();
  const norm = path.posix.normalize(v).replace(/\/+$/, '');
  if (
    v === '' ||
    !SAFE_PATH.test(v) ||
    v.startsWith('/') ||
    v.split('/').includes('..') ||
    norm === '.' ||
    norm === ''
  )
    fail(
      where,
      `${what} "${value}" must be a plain relative path (letters, digits, _ . - /) inside the repository`,
    );
  return norm;
}

function stringList(value: unknown, where: string, what: string): string[] {
  if (value === undefined) return [];
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
    fail(where, `${what} must be a string or a list of strings`);
  return value as string[];
}

/** `a` is `b` or inside it (paths normalised by relPath). */
function within(a: string, b: string): boolean {
  return a === b || a.startsWith(b + '/');
}

function overlaps(a: string, b: string): boolean {
  return within(a, b) || within(b, a);
}

interface RawStep {
  name: unknown;
  body: Record<string, unknown>;
}

function rawSteps(value: unknown, where: string): RawStep[] {
  if (Array.isArray(value)) {
    return value.map((body, i) => {
      if (!body || typeof body !== 'object' || Array.isArray(body))
        fail(where, `steps[${i}] must be a table ([[steps]] with name = and command =)`);
      return { name: (body as Record<string, unknown>).name, body: body as Record<string, unknown> };
    });
  }
  if (value && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).map(([name, body]) => {
      if (!body || typeof body !== 'object' || Array.isArray(body))
        fail(where, `steps.${name} must be a table ([steps.${name}] with command =)`);
      const b = body as Record<string, unknown>;
      if (b.name !== undefined && b.name !== name)
        fail(where, `[steps.${name}] has name = "${String(b.name)}": leave name out or make it "${name}"`);
      return { name, body: b };
    });
  }
  fail(where, 'steps must be [[steps]] tables or [steps.<name>] tables');
}

/**
 * The steps of a model config (its `steps` value), checked as a graph: unknown needs, cycles, two steps
 * writing one output, duplicate names. Undefined when the config has no steps (the single train-command).
 */
export function parseSteps(value: unknown, configPath: string): StepGraph | undefined {
  if (value === undefined) return undefined;
  const where = `${configPath}: steps`;
  const raws = rawSteps(value, where);
  if (raws.length === 0) fail(where, 'steps is empty: remove it to run train-command, or add a step');
  const steps: Step[] = [];
  const seen = new Set<string>();
  for (const [i, raw] of raws.entries()) {
    if (typeof raw.name !== 'string' || !NAME.test(raw.name))
      fail(
        where,
        raw.name === undefined
          ? `steps[${i}] has no name`
          : `step name "${String(raw.name)}" may hold only letters, digits, ".", "_" and "-"`,
      );
    const name = raw.name;
    const at = `${where}: step "${name}"`;
    if (seen.has(name)) fail(where, `two steps are named "${name}"`);
    seen.add(name);
    for (const k of Object.keys(raw.body))
      if (!STEP_KEYS.has(k)) fail(at, `unknown key "${k}" (known: ${[...STEP_KEYS].join(', ')})`);
    const command = raw.body.command;
    if (typeof command !== 'string' || command.trim() === '') fail(at, 'needs a command');
    const validate = raw.body.validate ?? false;
    if (typeof validate !== 'boolean') fail(at, 'validate must be true or false');
    const junit = raw.body.junit === undefined ? undefined : relPath(raw.body.junit, at, 'junit');
    if (junit && !validate) fail(at, 'junit belongs to a validate step (add validate = true)');
    const outputs = stringList(raw.body.outputs, at, 'outputs').map((o) => relPath(o, at, 'output'));
    if (junit && !outputs.some((o) => within(junit, o))) outputs.push(junit);
    const inputs: StepInput[] = stringList(raw.body.inputs, at, 'inputs').map((s) => {
      if (s.startsWith(STORE_INPUT)) {
        const key = s.slice(STORE_INPUT.length).trim().replace(/^\/+/, '');
        if (!key || key.endsWith('/')) fail(at, `input "${s}" must name one store object (store:<key>)`);
        return { kind: 'store', key, path: relPath(path.posix.basename(key), at, 'store input name') };
      }
      return { kind: 'path', path: relPath(s, at, 'input') };
    });
    const needs = stringList(raw.body.needs, at, 'needs').map((n) => n.trim());
    steps.push({ name, command: command.trim(), needs, inputs, outputs, validate, junit });
  }

  // one writer per output: two steps writing one file (or one inside the other's folder) race each other
  const writers: { step: string; output: string }[] = [];
  for (const s of steps) {
    for (const [i, o] of s.outputs.entries()) {
      if (s.outputs.some((p, j) => j !== i && overlaps(o, p)))
        fail(`${where}: step "${s.name}"`, `lists output "${o}" twice (or inside another of its outputs)`);
      const other = writers.find((w) => w.step !== s.name && overlaps(w.output, o));
      if (other)
        fail(
          where,
          `steps "${other.step}" and "${s.name}" both write ${other.output === o ? `"${o}"` : `"${other.output}" and "${o}" (one inside the other)`}: give each output one step`,
        );
      writers.push({ step: s.name, output: o });
    }
  }
  const names = steps.map((s) => s.name);
  for (const s of steps) {
    for (const n of s.needs)
      if (!seen.has(n))
        fail(`${where}: step "${s.name}"`, `needs "${n}", which is not a step (steps: ${names.join(', ')})`);
    // reading another step's output is needing it
    for (const input of s.inputs) {
      const w = writers.find((x) => x.step !== s.name && overlaps(input.path, x.output));
      if (!w) continue;
      if (input.kind === 'store')
        fail(
          `${where}: step "${s.name}"`,
          `store input ${input.key} would land on "${w.output}", which step "${w.step}" writes`,
        );
      if (!s.needs.includes(w.step)) s.needs.push(w.step);
    }
    const self = s.outputs.find((o) => s.inputs.some((i) => i.kind === 'store' && overlaps(i.path, o)));
    if (self) fail(`${where}: step "${s.name}"`, `a store input would land on its own output "${self}"`);
    s.needs = [...new Set(s.needs)].sort();
  }
  return { steps, levels: levelsOf(steps, where) };
}

/** Kahn's algorithm by levels, in declaration order within a level; a cycle is named step by step. */
function levelsOf(steps: Step[], where: string): string[][] {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const done = new Set<string>();
  const levels: string[][] = [];
  while (done.size < steps.length) {
    const ready = steps.filter((s) => !done.has(s.name) && s.needs.every((n) => done.has(n)));
    if (ready.length === 0) {
      const cycle = findCycle(
        steps.filter((s) => !done.has(s.name)),
        byName,
      );
      fail(where, `steps form a cycle: ${cycle.join(' -> ')}`);
    }
    levels.push(ready.map((s) => s.name));
    for (const s of ready) done.add(s.name);
  }
  return levels;
}

function findCycle(left: Step[], byName: Map<string, Step>): string[] {
  // every step left has a need left, so walking needs from any of them must come back to a visited step
  const trail: string[] = [];
  let at: Step = left[0];
  const inLeft = new Set(left.map((s) => s.name));
  while (!trail.includes(at.name)) {
    trail.push(at.name);
    at = byName.get(at.needs.find((n) => inLeft.has(n))!)!;
  }
  const cycle = trail.slice(trail.indexOf(at.name));
  return [...cycle.reverse(), cycle[0]];
}

/** The steps in a runnable order (levels flattened). */
export function runOrder(graph: StepGraph): string[] {
  return graph.levels.flat();
}

/** What a step's key is made of: the content hash of each input, the key of each needed step. */
export interface StepKeyInput {
  command: string;
  outputs: readonly string[];
  /** Input reference (path or store:key) -> sha256 of its content. */
  inputs: ReadonlyMap<string, string> | Record<string, string>;
  /** Needed step name -> its key. */
  upstream: ReadonlyMap<string, string> | Record<string, string>;
}

const KEY_FORMAT = 'model-pipeline-step/1';

/**
 * sha256 of the command, the outputs it promises, its inputs' content hashes and its upstream keys, in a
 * canonical order: the same work on the same bytes has the same key, whatever order the config lists it in.
 */
export function stepKey(k: StepKeyInput): string {
  const entries = (m: StepKeyInput['inputs']): [string, string][] =>
    (m instanceof Map ? [...m.entries()] : Object.entries(m)).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
  const canonical = JSON.stringify([
    KEY_FORMAT,
    k.command,
    [...k.outputs].sort(),
    entries(k.inputs),
    entries(k.upstream),
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

/** Store folder of a step's cache, under the store prefix: `<prefix>/_steps/<key>/`. */
export const STEPS_DIR = '_steps';
export const STEP_RECORD = 'step.json';
export const STEP_OUTPUTS = 'outputs.tar.gz';

export function stepCacheFolder(root: string, key: string): string {
  const base = root.replace(/^\/+|\/+$/g, '');
  return (base ? `${base}/` : '') + `${STEPS_DIR}/${key}/`;
}

/** The key a store object under `<root>/_steps/<key>/` belongs to, or undefined. */
export function stepKeyOfObject(root: string, objectKey: string): string | undefined {
  const base = root.replace(/^\/+|\/+$/g, '');
  const prefix = (base ? `${base}/` : '') + `${STEPS_DIR}/`;
  if (!objectKey.startsWith(prefix)) return undefined;
  const key = objectKey.slice(prefix.length).split('/')[0];
  return /^[0-9a-f]{64}$/.test(key) ? key : undefined;
}

/** What the manifest keeps of each step: part of the model's lineage. */
export interface StepRecord {
  name: string;
  key: string;
  status: 'ran' | 'cached';
  cacheHit: boolean;
  seconds: number;
  outputs: string[];
}

// ---- commands run on the training host (inside the repository copy) ----

const INPUT_LINE = 'MP-INPUT';
const MISSING_LINE = 'MP-MISSING';

/**
 * One command printing `MP-INPUT <sha256> <path>` per input: a file's bytes, or for a folder the sorted
 * `sha256  ./name` lines of every file in it; `MP-MISSING <path>` for what is not there.
 */
export function hashPathsCommand(paths: readonly string[]): string {
  if (paths.length === 0) return 'true';
  return (
    `for p in ${paths.map(shellQuote).join(' ')}; do ` +
    `if [ -f "$p" ]; then h=$(sha256sum < "$p" | cut -d' ' -f1); ` +
    `elif [ -d "$p" ]; then h=$(cd "$p" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1); ` +
    `else printf '${MISSING_LINE} %s\\n' "$p"; continue; fi; ` +
    `printf '${INPUT_LINE} %s %s\\n' "$h" "$p"; done`
  );
}

export function parseHashLines(lines: readonly string[]): { hashes: Map<string, string>; missing: string[] } {
  const hashes = new Map<string, string>();
  const missing: string[] = [];
  for (const line of lines) {
    const m = /^MP-INPUT ([0-9a-f]{64}) (.+)$/.exec(line.trim());
    if (m) hashes.set(m[2], m[1]);
    const x = /^MP-MISSING (.+)$/.exec(line.trim());
    if (x) missing.push(x[1]);
  }
  return { hashes, missing };
}

/** Where step archives wait on the host, inside the repository copy (never an output). */
export const HOST_STEP_DIR = '.model-pipeline-steps';

/** Packs a finished step's outputs into one archive; `MP-MISSING <path>` and exit 44 when one is absent. */
export function packOutputsCommand(outputs: readonly string[], archive: string): string {
  const list = outputs.map(shellQuote).join(' ');
  return (
    `missing=0; for p in ${list}; do [ -e "$p" ] || { printf '${MISSING_LINE} %s\\n' "$p"; missing=1; }; done; ` +
    `[ "$missing" = 0 ] || exit 44; mkdir -p ${shellQuote(path.posix.dirname(archive))} && ` +
    `tar -czf ${shellQuote(archive)} -- ${list}`
  );
}

/** Replaces the outputs with those of a cached archive, then removes the archive. */
export function unpackOutputsCommand(outputs: readonly string[], archive: string): string {
  const rm = outputs.length ? `rm -rf -- ${outputs.map(shellQuote).join(' ')} && ` : '';
  return `${rm}tar -xzf ${shellQuote(archive)} && rm -f ${shellQuote(archive)}`;
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}

const SUITE = /<testsuite\b(?:[^>]*\/>|[\s\S]*?<\/testsuite>)/g;

function countOf(openTag: string, attr: string): number {
  const m = new RegExp(`\\s${attr}="(\\d+)"`).exec(openTag);
  return m ? Number(m[1]) : 0;
}

/**
 * One JUnit document of the benchmark report's suites and those of validate steps' JUnit files, with the
 * totals summed on `<testsuites>`. A file without a `<testsuite>` becomes a suite with one error, so an
 * unreadable report is seen rather than lost.
 */
export function mergeJunit(
  base: string | undefined,
  extra: readonly { step: string; xml: string }[],
): string {
  const suites: string[] = [];
  const take = (xml: string): number => {
    const found = xml.match(SUITE) ?? [];
    suites.push(...found);
    return found.length;
  };
  if (base) take(base);
  for (const e of extra) {
    if (take(e.xml) === 0)
      suites.push(
        `<testsuite name="${escapeAttr(`validate step ${e.step}`)}" tests="1" failures="0" errors="1">` +
          `<testcase name="junit" classname="steps.${escapeAttr(e.step)}"><error message="the step's JUnit file holds no testsuite"/></testcase></testsuite>`,
      );
  }
  let tests = 0;
  let failures = 0;
  let errors = 0;
  for (const s of suites) {
    const open = /^<testsuite\b[^>]*>/.exec(s)?.[0] ?? '';
    tests += countOf(open, 'tests');
    failures += countOf(open, 'failures');
    errors += countOf(open, 'errors');
  }
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="model-pipeline" tests="${tests}" failures="${failures}" errors="${errors}">`,
    ...suites.map((s) => '  ' + s),
    '</testsuites>',
    '',
  ].join('\n');
}

export interface StepCachePlanEntry {
  key: string;
  action: 'delete' | 'keep';
  reason: string;
  bytes: number;
  /** The cache's objects, step.json first: a half-deleted entry is never a cache hit. */
  objectKeys: string[];
}

/**
 * Rotation of step caches: a cache is garbage once no kept model's manifest records its key and it is older
 * than the grace period (so the caches of a failed run stay for its rerun to resume from).
 */
export function planStepCaches(o: {
  objects: Iterable<{ key: string; size: number; lastModified: Date }>;
  root: string;
  referenced: ReadonlySet<string>;
  now: Date;
  graceDays: number;
}): StepCachePlanEntry[] {
  const byKey = new Map<string, { key: string; size: number; lastModified: Date }[]>();
  for (const obj of o.objects) {
    const k = stepKeyOfObject(o.root, obj.key);
    if (!k) continue;
    const list = byKey.get(k);
    if (list) list.push(obj);
    else byKey.set(k, [obj]);
  }
  const cutoff = o.now.getTime() - o.graceDays * 24 * 60 * 60 * 1000;
  return [...byKey.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([key, objs]) => {
      const bytes = objs.reduce((n, x) => n + x.size, 0);
      const newest = Math.max(...objs.map((x) => x.lastModified.getTime()));
      const objectKeys = objs
        .map((x) => x.key)
        .sort((a, b) => Number(b.endsWith('/' + STEP_RECORD)) - Number(a.endsWith('/' + STEP_RECORD)));
      const base = { key, bytes, objectKeys };
      if (o.referenced.has(key)) return { ...base, action: 'keep', reason: 'recorded by a kept model' };
      if (newest > cutoff)
        return {
          ...base,
          action: 'keep',
          reason: `written within the grace period (${o.graceDays} days): a failed run may resume from it`,
        };
      return { ...base, action: 'delete', reason: 'no kept model records it' };
    });
}
