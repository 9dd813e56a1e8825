import { parse as parseToml } from 'smol-toml';
import * as z from './schema';
import { UserError } from './errors';

/** Benchmark results written beside a model; JSON is read, the XML twin is for CI test reporters. */
export const BENCHMARK_JSON = 'benchmark_results.json';
export const BENCHMARK_XML = 'benchmark_results.xml';

/**
 * Names of the metrics file (JSON data) a model folder may hold, in the order to try: the one its manifest
 * names, then the defaults. The JUnit report (`.xml`) is a report made from the data, never read as data:
 * manifests written before `benchmark.report` existed named the report in `benchmark.file`.
 */
export function metricsFileNames(manifest?: {
  benchmark?: { file?: string };
  metrics?: { file: string };
}): string[] {
  const names = [manifest?.metrics?.file, manifest?.benchmark?.file, BENCHMARK_JSON, 'metrics.json'];
  return [...new Set(names.filter((n): n is string => !!n && !/\.xml$/i.test(n)))];
}

/**
 * Numeric metrics of a benchmark results file, by dotted path. Reads `metrics` (or `results`) when present,
 * else the whole object, so `{"top1": 0.9}` and `{"metrics": {"top1": 0.9}}` both work.
 */
export function extractMetrics(raw: unknown): Map<string, number> {
  const out = new Map<string, number>();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return out;
  const obj = raw as Record<string, unknown>;
  const inner = obj.metrics ?? obj.results;
  const root = inner && typeof inner === 'object' && !Array.isArray(inner) ? inner : obj;
  const walk = (v: unknown, path: string, depth: number): void => {
    if (typeof v === 'number' && Number.isFinite(v)) out.set(path, v);
    else if (v && typeof v === 'object' && !Array.isArray(v) && depth < 4) {
      for (const [k, child] of Object.entries(v as Record<string, unknown>))
        walk(child, path ? `${path}.${k}` : k, depth + 1);
    }
  };
  walk(root, '', 0);
  return out;
}

/** A few metrics in one line for tables: `top1=0.912 top5=0.981`. */
export function headline(metrics: Map<string, number>, max = 3): string {
  return [...metrics]
    .slice(0, max)
    .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toPrecision(4).replace(/\.?0+$/, '')}`)
    .join(' ');
}

const thresholdSchema = z.strictObject({
  /** higher: a drop is worse (accuracy); lower: a rise is worse (loss). */
  better: z._default(z.enum(['higher', 'lower']), 'higher'),
  /** Largest worsening, in the metric's own units, that only warns. */
  warn: z.optional(z.number().check(z.nonnegative())),
  /** Largest worsening allowed at all; beyond it the promotion fails. */
  fail: z.optional(z.number().check(z.nonnegative())),
  /** Absolute floor: a value below it fails whatever the current model scores. */
  min: z.optional(z.number()),
  /** Absolute ceiling (e.g. for a loss): a value above it fails. */
  max: z.optional(z.number()),
});

const thresholdsSchema = z.strictObject({ metrics: z.record(z.string(), thresholdSchema) });
export type Thresholds = z.infer<typeof thresholdsSchema>;

/** Thresholds from JSON or TOML (chosen by extension), e.g. `[metrics.top1] better="higher" fail=0.01`. */
export function parseThresholds(text: string, file: string): Thresholds {
  let raw: unknown;
  try {
    raw = /\.toml$/i.test(file) ? parseToml(text) : JSON.parse(text);
  } catch (err) {
    throw new UserError(`thresholds file ${file} cannot be parsed: ${(err as Error).message.split('\n')[0]}`);
  }
  const r = thresholdsSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new UserError(`thresholds file ${file}: "${issue.path.join('.')}" ${issue.message}`);
  }
  if (Object.keys(r.data.metrics).length === 0)
    throw new UserError(`thresholds file ${file} names no metric under "metrics"`);
  for (const [name, t] of Object.entries(r.data.metrics)) {
    if (t.warn !== undefined && t.fail !== undefined && t.warn > t.fail)
      throw new UserError(
        `thresholds file ${file}: metrics.${name}.warn (${t.warn}) is above fail (${t.fail})`,
      );
    if (t.min !== undefined && t.max !== undefined && t.min > t.max)
      throw new UserError(`thresholds file ${file}: metrics.${name}.min (${t.min}) is above max (${t.max})`);
  }
  return r.data;
}

export type Verdict = 'ok' | 'warn' | 'fail';

export interface MetricComparison {
  metric: string;
  current?: number;
  candidate?: number;
  /** candidate - current. */
  change?: number;
  /** How much worse the candidate is (positive = worse), in the metric's units. */
  worsening?: number;
  verdict: Verdict;
  note: string;
}

export const formatMetric = (n: number | undefined): string =>
  n === undefined ? '-' : Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(6)));

/**
 * Candidate against the model the environment runs now. Without a current model (first promotion) or
 * without its metric there is nothing to compare: ok, with a note. A metric the candidate lacks fails.
 */
export function compareBenchmarks(
  thresholds: Thresholds,
  candidate: Map<string, number>,
  current: Map<string, number> | undefined,
): { rows: MetricComparison[]; verdict: Verdict } {
  const rows: MetricComparison[] = [];
  for (const [metric, t] of Object.entries(thresholds.metrics)) {
    const cand = candidate.get(metric);
    const cur = current?.get(metric);
    if (cand === undefined) {
      rows.push({ metric, current: cur, verdict: 'fail', note: 'missing from the candidate results' });
      continue;
    }
    const outside = outsideLimits(t, cand);
    if (cur === undefined) {
      const note = current ? 'current model has no such metric' : 'no current model to compare with';
      rows.push(
        outside
          ? { metric, candidate: cand, verdict: 'fail', note: `${outside}; ${note}` }
          : { metric, candidate: cand, verdict: 'ok', note },
      );
      continue;
    }
    const change = cand - cur;
    const worsening = t.better === 'higher' ? -change : change;
    // float noise must not turn an equal result into a 1e-17 "drop"
    const eps = 1e-9 * Math.max(1, Math.abs(cur), Math.abs(cand));
    let verdict: Verdict = 'ok';
    let note =
      worsening > eps
        ? `${t.better === 'higher' ? 'dropped' : 'rose'} by ${formatMetric(worsening)}`
        : 'not worse';
    if (t.fail !== undefined && worsening > t.fail + eps) {
      verdict = 'fail';
      note += ` (fail above ${formatMetric(t.fail)})`;
    } else if (t.warn !== undefined && worsening > t.warn + eps) {
      verdict = 'warn';
      note += ` (warn above ${formatMetric(t.warn)})`;
    }
    if (outside) {
      verdict = 'fail';
      note = `${outside}; ${note}`;
    }
    rows.push({ metric, current: cur, candidate: cand, change, worsening, verdict, note });
  }
  const verdict: Verdict = rows.some((r) => r.verdict === 'fail')
    ? 'fail'
    : rows.some((r) => r.verdict === 'warn')
      ? 'warn'
      : 'ok';
  return { rows, verdict };
}

type Threshold = Thresholds['metrics'][string];

/** Why a value breaks the absolute limits (min/max), or undefined when it keeps them. */
function outsideLimits(t: Threshold, value: number): string | undefined {
  if (t.min !== undefined && value < t.min) return `below the floor ${formatMetric(t.min)}`;
  if (t.max !== undefined && value > t.max) return `above the ceiling ${formatMetric(t.max)}`;
  return undefined;
}

/** The limits of one metric in words, for reports: `>= 0.8; drop <= 0.01 (warn above 0.005)`. */
export function describeThreshold(t: Threshold): string {
  const parts: string[] = [];
  if (t.min !== undefined) parts.push(`>= ${formatMetric(t.min)}`);
  if (t.max !== undefined) parts.push(`<= ${formatMetric(t.max)}`);
  const change = t.better === 'higher' ? 'drop' : 'rise';
  if (t.fail !== undefined)
    parts.push(
      `${change} <= ${formatMetric(t.fail)}${t.warn !== undefined ? ` (warn above ${formatMetric(t.warn)})` : ''}`,
    );
  else if (t.warn !== undefined) parts.push(`${change} warns above ${formatMetric(t.warn)}`);
  return parts.length > 0 ? parts.join('; ') : `${t.better} is better (no limit)`;
}

/** A metric's change with its sign, '-' when there is nothing to compare with. */
export function formatChange(change: number | undefined): string {
  return change === undefined ? '-' : (change > 0 ? '+' : '') + formatMetric(change);
}

export function comparisonRows(rows: MetricComparison[]): string[][] {
  return rows.map((r) => [
    r.metric,
    formatMetric(r.current),
    formatMetric(r.candidate),
    formatChange(r.change),
    r.verdict,
    r.note,
  ]);
}
export const COMPARISON_HEADER = ['metric', 'current', 'candidate', 'change', 'verdict', 'note'];
