import {
  compareBenchmarks,
  describeThreshold,
  extractMetrics,
  formatChange,
  formatMetric,
  type Thresholds,
  type Verdict,
} from './benchmark';
import { UserError } from './errors';
import { markdownTable, textTable } from './markdown';

/** One JUnit test case: a metric of the training run, or the run's own pass/fail verdict. */
export interface BenchmarkCase {
  metric: string;
  value?: number;
  current?: number;
  /** value - current. */
  change?: number;
  /** The limits in words, or `no threshold`. */
  threshold: string;
  verdict: Verdict;
  note: string;
}

/** A GitHub annotation for the action layer to emit (logger.error / logger.warn). */
export interface BenchmarkAnnotation {
  level: 'error' | 'warning';
  title: string;
  message: string;
}

export interface BenchmarkReport {
  cases: BenchmarkCase[];
  /** False when any case failed; warnings still pass. */
  passed: boolean;
  verdict: Verdict;
  /** benchmark_results.xml: JUnit, one testcase per case. */
  xml: string;
  /** Markdown for the step summary: this model vs the current one. */
  summary: string;
  /** The same table for terminals. */
  text: string;
  annotations: BenchmarkAnnotation[];
}

export interface BenchmarkReportInput {
  /** Text of the training run's metrics file; undefined when the file does not exist. */
  metricsText: string | undefined;
  /** The metrics file as users know it (path or URI), for messages. */
  metricsFile: string;
  thresholds?: Thresholds;
  /** Model folder the report is for (`models/1.2.0-abc1234/`). */
  modelPrefix: string;
  /** Environment the model is compared with, and the model it runs now (with its metrics). */
  environment: string;
  current?: { prefix: string; metrics: Map<string, number> };
  /** Timestamp of the JUnit suite. */
  at?: Date;
}

/** A metrics file's own verdict key: `{"passed": false}` fails the report whatever the thresholds say. */
const VERDICT_CASE = 'passed';

/**
 * Numeric metrics of a metrics file, or a UserError naming the file: missing, not JSON, or no numbers at all.
 * A report is never built from a file we could not read, so it can never claim a pass it did not check.
 */
export function parseMetricsFile(
  text: string | undefined,
  file: string,
): { metrics: Map<string, number>; declaredPassed?: boolean } {
  if (text === undefined)
    throw new UserError(
      `metrics file ${file} does not exist: the training command must write it (see metrics-file)`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UserError(`metrics file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new UserError(`metrics file ${file} must hold a JSON object of metrics, e.g. {"top1": 0.91}`);
  const metrics = extractMetrics(raw);
  if (metrics.size === 0)
    throw new UserError(
      `metrics file ${file} holds no numeric metric (at the top level or under "metrics"), e.g. {"top1": 0.91}`,
    );
  const passed = (raw as { passed?: unknown }).passed;
  return { metrics, ...(typeof passed === 'boolean' ? { declaredPassed: passed } : {}) };
}

export function buildBenchmarkReport(input: BenchmarkReportInput): BenchmarkReport {
  const { metrics, declaredPassed } = parseMetricsFile(input.metricsText, input.metricsFile);
  const thresholds = input.thresholds;
  if (thresholds) {
    const missing = Object.keys(thresholds.metrics).filter((m) => !metrics.has(m));
    if (missing.length > 0)
      throw new UserError(
        `metrics file ${input.metricsFile} has no ${missing.map((m) => `"${m}"`).join(', ')}, which the thresholds file requires` +
          ` (it has ${[...metrics.keys()].join(', ')}); have the training command write ${missing.length > 1 ? 'them' : 'it'} or drop ${missing.length > 1 ? 'them' : 'it'} from the thresholds`,
      );
  }
  const current = input.current?.metrics;
  const cases: BenchmarkCase[] = [];
  if (thresholds) {
    const { rows } = compareBenchmarks(thresholds, metrics, current);
    for (const r of rows)
      cases.push({
        metric: r.metric,
        value: r.candidate,
        current: r.current,
        change: r.change,
        threshold: describeThreshold(thresholds.metrics[r.metric]),
        verdict: r.verdict,
        note: r.note,
      });
  }
  for (const [metric, value] of metrics) {
    if (thresholds?.metrics[metric]) continue;
    const cur = current?.get(metric);
    cases.push({
      metric,
      value,
      current: cur,
      change: cur === undefined ? undefined : value - cur,
      threshold: 'no threshold',
      verdict: 'ok',
      note: 'recorded only',
    });
  }
  if (declaredPassed !== undefined)
    cases.push({
      metric: VERDICT_CASE,
      threshold: 'the training run must report passed: true',
      verdict: declaredPassed ? 'ok' : 'fail',
      note: declaredPassed
        ? 'the training run reported passed'
        : `the training run reported passed: false in ${input.metricsFile}`,
    });

  const verdict: Verdict = cases.some((c) => c.verdict === 'fail')
    ? 'fail'
    : cases.some((c) => c.verdict === 'warn')
      ? 'warn'
      : 'ok';
  const against = input.current
    ? `${input.environment} (${input.current.prefix})`
    : `${input.environment} (no current model)`;
  return {
    cases,
    passed: verdict !== 'fail',
    verdict,
    xml: junitXml(cases, input, against),
    summary: summaryMarkdown(cases, input, against, verdict),
    text: `benchmark of ${input.modelPrefix} against ${against}: ${verdictWord(verdict)}\n${textTable(REPORT_HEADER, tableRows(cases))}`,
    annotations: cases
      .filter((c) => c.verdict !== 'ok')
      .map((c) => ({
        level: c.verdict === 'fail' ? ('error' as const) : ('warning' as const),
        title: `benchmark ${c.metric} ${c.verdict === 'fail' ? 'failed' : 'warns'}`,
        message: `${input.modelPrefix}: ${c.metric}${c.value === undefined ? '' : ` = ${formatMetric(c.value)}`}: ${c.note} (threshold: ${c.threshold})`,
      })),
  };
}

export const REPORT_HEADER = ['metric', 'this model', 'current', 'delta', 'threshold', 'result'];

const verdictWord = (v: Verdict): string => (v === 'ok' ? 'pass' : v);

function tableRows(cases: BenchmarkCase[]): string[][] {
  return cases.map((c) => [
    c.metric,
    formatMetric(c.value),
    formatMetric(c.current),
    formatChange(c.change),
    c.threshold,
    c.verdict === 'ok' ? 'pass' : `${c.verdict}: ${c.note}`,
  ]);
}

function summaryMarkdown(
  cases: BenchmarkCase[],
  input: BenchmarkReportInput,
  against: string,
  verdict: Verdict,
): string {
  const failed = cases.filter((c) => c.verdict === 'fail').length;
  const headline =
    verdict === 'fail'
      ? `**failed**: ${failed} of ${cases.length} checks missed their threshold`
      : verdict === 'warn'
        ? `**passed with warnings**`
        : `**passed**`;
  return (
    `### benchmark: ${input.modelPrefix}\n\n` +
    `Compared with ${against}. ${headline}\n\n` +
    `${markdownTable(REPORT_HEADER, tableRows(cases))}\n`
  );
}

// XML 1.0 cannot carry most control characters even escaped: drop them
// eslint-disable-next-line no-control-regex
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

export function escapeXml(s: string): string {
  return s
    .replace(XML_INVALID, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** JUnit as test-report actions and CircleCI's store_test_results read it. */
function junitXml(cases: BenchmarkCase[], input: BenchmarkReportInput, against: string): string {
  const failures = cases.filter((c) => c.verdict === 'fail').length;
  const suite = `benchmark ${input.modelPrefix}`;
  const classname = `benchmark.${input.modelPrefix.replace(/\/+$/, '').replace(/[/]/g, '.')}`;
  const attr = (o: Record<string, string | number>): string =>
    Object.entries(o)
      .map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`)
      .join('');
  const prop = (name: string, value: string): string => `        <property${attr({ name, value })}/>`;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attr({ name: 'benchmark', tests: cases.length, failures, errors: 0 })}>`,
    `  <testsuite${attr({
      name: suite,
      tests: cases.length,
      failures,
      errors: 0,
      skipped: 0,
      time: 0,
      ...(input.at ? { timestamp: input.at.toISOString().replace(/\.\d{3}Z$/, '') } : {}),
    })}>`,
    '    <properties>',
    `      <property${attr({ name: 'model-prefix', value: input.modelPrefix })}/>`,
    `      <property${attr({ name: 'environment', value: input.environment })}/>`,
    `      <property${attr({ name: 'compared-with', value: input.current?.prefix ?? '' })}/>`,
    `      <property${attr({ name: 'metrics-file', value: input.metricsFile })}/>`,
    '    </properties>',
  ];
  for (const c of cases) {
    lines.push(`    <testcase${attr({ name: c.metric, classname, time: 0 })}>`);
    lines.push('      <properties>');
    if (c.value !== undefined) lines.push(prop('value', formatMetric(c.value)));
    lines.push(prop('threshold', c.threshold));
    if (c.current !== undefined) lines.push(prop('current', formatMetric(c.current)));
    if (c.change !== undefined) lines.push(prop('delta', formatMetric(c.change)));
    lines.push(prop('verdict', verdictWord(c.verdict)));
    lines.push('      </properties>');
    const detail =
      `${c.metric}${c.value === undefined ? '' : ` = ${formatMetric(c.value)}`}; threshold: ${c.threshold}; ` +
      `current (${against}): ${formatMetric(c.current)}; ${verdictWord(c.verdict)}: ${c.note}`;
    if (c.verdict === 'fail')
      lines.push(
        `      <failure${attr({ message: `${c.metric}: ${c.note}`, type: 'threshold' })}>${escapeXml(detail)}</failure>`,
      );
    lines.push(`      <system-out>${escapeXml(detail)}</system-out>`);
    lines.push('    </testcase>');
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}
