import { XMLParser } from 'fast-xml-parser';
import { parseThresholds } from '../../src/core/benchmark';
import { buildBenchmarkReport, parseMetricsFile } from '../../src/core/benchmark-report';
import { UserError } from '../../src/core/errors';

const thresholds = parseThresholds(
  JSON.stringify({
    metrics: {
      top1: { better: 'higher', min: 0.8, warn: 0.005, fail: 0.02 },
      top5: { better: 'higher', min: 0.9 },
      loss: { better: 'lower', max: 1, fail: 0.1 },
    },
  }),
  'thresholds.json',
);

const PREFIX = 'models/1.2.0-abc1234/';

interface Case {
  '@_name': string;
  '@_classname': string;
  properties: { property: { '@_name': string; '@_value': string }[] };
  failure?: { '@_message': string; '@_type': string; '#text': string };
  'system-out': string;
}

function parseJunit(xml: string) {
  const doc = new XMLParser({
    ignoreAttributes: false,
    parseAttributeValue: false,
    parseTagValue: false,
    isArray: (name) => ['testcase', 'property'].includes(name),
  }).parse(xml) as {
    testsuites: {
      '@_tests': string;
      '@_failures': string;
      testsuite: { '@_name': string; '@_tests': string; '@_failures': string; testcase: Case[] };
    };
  };
  const suite = doc.testsuites.testsuite;
  const cases = new Map(
    suite.testcase.map((c) => [
      c['@_name'],
      {
        props: Object.fromEntries(c.properties.property.map((p) => [p['@_name'], p['@_value']])),
        failure: c.failure,
        out: c['system-out'],
        classname: c['@_classname'],
      },
    ]),
  );
  return { doc, suite, cases };
}

const report = (metrics: unknown, current?: Record<string, number>, t = thresholds) =>
  buildBenchmarkReport({
    metricsText: typeof metrics === 'string' ? metrics : JSON.stringify(metrics),
    metricsFile: 'out/metrics.json',
    thresholds: t,
    modelPrefix: PREFIX,
    environment: 'production',
    current: current
      ? { prefix: 'models/1.1.0-0000000/', metrics: new Map(Object.entries(current)) }
      : undefined,
    at: new Date('2024-05-01T10:00:00.000Z'),
  });

describe('benchmark report (JUnit, summary, annotations)', () => {
  it('passes a model within every threshold: one testcase per metric with value and threshold', () => {
    const r = report(
      { metrics: { top1: 0.91, top5: 0.97, loss: 0.3, last_epoch: { accuracy: 0.93 } } },
      { top1: 0.912, top5: 0.96, loss: 0.35 },
    );
    expect(r.passed).toBe(true);
    expect(r.verdict).toBe('ok');
    expect(r.annotations).toEqual([]);
    const { doc, suite, cases } = parseJunit(r.xml);
    expect(doc.testsuites['@_tests']).toBe('4');
    expect(doc.testsuites['@_failures']).toBe('0');
    expect(suite['@_name']).toBe(`benchmark ${PREFIX}`);
    expect([...cases.keys()]).toEqual(['top1', 'top5', 'loss', 'last_epoch.accuracy']);
    expect(cases.get('top1')!.props).toMatchObject({
      value: '0.91',
      current: '0.912',
      verdict: 'pass',
      threshold: '>= 0.8; drop <= 0.02 (warn above 0.005)',
    });
    expect(cases.get('loss')!.props.threshold).toBe('<= 1; rise <= 0.1');
    expect(cases.get('last_epoch.accuracy')!.props).toMatchObject({
      value: '0.93',
      threshold: 'no threshold',
    });
    expect(cases.get('top1')!.classname).toBe('benchmark.models.1.2.0-abc1234');
    for (const c of cases.values()) expect(c.failure).toBeUndefined();
    expect(r.summary).toMatch(/\*\*passed\*\*/);
    expect(r.summary).toMatch(/\| top1 \| 0\.91 \| 0\.912 \| -0\.002 \| .* \| pass \|/);
    expect(r.text).toMatch(/against production \(models\/1\.1\.0-0000000\/\): pass/);
  });

  it('fails a metric below its absolute floor even without a current model, with failure element and annotation', () => {
    const r = report({ top1: 0.75, top5: 0.95, loss: 0.4 });
    expect(r.passed).toBe(false);
    const { doc, cases } = parseJunit(r.xml);
    expect(doc.testsuites['@_failures']).toBe('1');
    const top1 = cases.get('top1')!;
    expect(top1.failure?.['@_type']).toBe('threshold');
    expect(top1.failure?.['@_message']).toMatch(/top1: below the floor 0\.8/);
    expect(top1.failure?.['#text']).toMatch(/top1 = 0\.75; threshold: >= 0\.8/);
    expect(top1.props.verdict).toBe('fail');
    expect(cases.get('top5')!.failure).toBeUndefined();
    expect(r.annotations).toEqual([
      {
        level: 'error',
        title: 'benchmark top1 failed',
        message: expect.stringMatching(/^models\/1\.2\.0-abc1234\/: top1 = 0\.75: below the floor 0\.8/),
      },
    ]);
    expect(r.summary).toMatch(/\*\*failed\*\*: 1 of 3 checks/);
    expect(r.summary).toMatch(/\| top1 \| 0\.75 \| - \| - \| .* \| fail: below the floor/);
  });

  it('fails a drop beyond the relative limit, warns within it (warnings still pass)', () => {
    const cur = { top1: 0.95, top5: 0.97, loss: 0.3 };
    const warn = report({ top1: 0.94, top5: 0.97, loss: 0.3 }, cur);
    expect(warn.passed).toBe(true);
    expect(warn.verdict).toBe('warn');
    expect(warn.annotations.map((a) => [a.level, a.title])).toEqual([['warning', 'benchmark top1 warns']]);
    expect(parseJunit(warn.xml).cases.get('top1')!.failure).toBeUndefined();
    expect(parseJunit(warn.xml).cases.get('top1')!.props.verdict).toBe('warn');

    const fail = report({ top1: 0.9, top5: 0.97, loss: 0.45 }, cur);
    expect(fail.passed).toBe(false);
    const { cases, doc } = parseJunit(fail.xml);
    expect(doc.testsuites['@_failures']).toBe('2');
    expect(cases.get('top1')!.failure?.['@_message']).toMatch(/dropped by 0\.05 \(fail above 0\.02\)/);
    expect(cases.get('loss')!.failure?.['@_message']).toMatch(/rose by 0\.15/);
    expect(cases.get('loss')!.props.delta).toBe('0.15');
  });

  it("fails when the training run's own verdict says passed: false", () => {
    const r = report({ passed: false, metrics: { top1: 0.99, top5: 0.99, loss: 0.1 } });
    expect(r.passed).toBe(false);
    const { cases } = parseJunit(r.xml);
    expect(cases.get('passed')!.failure?.['@_message']).toMatch(/reported passed: false/);
  });

  it('without thresholds records every metric and passes', () => {
    const r = buildBenchmarkReport({
      metricsText: '{"acc": 0.5}',
      metricsFile: 'm.json',
      modelPrefix: PREFIX,
      environment: 'staging',
    });
    expect(r.passed).toBe(true);
    expect(parseJunit(r.xml).cases.get('acc')!.props.threshold).toBe('no threshold');
    expect(r.summary).toMatch(/staging \(no current model\)/);
  });

  it('escapes metric names and notes so the XML stays well formed', () => {
    const r = buildBenchmarkReport({
      metricsText: JSON.stringify({ 'a<b&"c"\u0001': 1 }),
      metricsFile: 'dir/<weird>&.json',
      modelPrefix: PREFIX,
      environment: 'production',
    });
    const { cases, doc } = parseJunit(r.xml);
    expect(doc.testsuites['@_tests']).toBe('1');
    // the parser decodes entities: the round trip gives the original name back (minus the control character)
    expect([...cases.keys()]).toEqual(['a<b&"c"']);
    expect(r.xml).toContain('name="a&lt;b&amp;&quot;c&quot;"');
    expect(r.xml.includes('\u0001')).toBe(false);
    expect(r.xml).toContain('value="dir/&lt;weird&gt;&amp;.json"');
  });

  describe('bad metrics files give a clear UserError and no report', () => {
    it.each([
      ['missing', undefined, /metrics file out\/metrics.json does not exist/],
      ['malformed JSON', '{"top1": 0.9', /metrics file out\/metrics.json is not valid JSON/],
      ['not an object', '[0.9, 0.8]', /must hold a JSON object/],
      ['no numbers', '{"top1": "high"}', /holds no numeric metric/],
    ])('%s', (_label, text, message) => {
      const build = () =>
        buildBenchmarkReport({
          metricsText: text,
          metricsFile: 'out/metrics.json',
          thresholds,
          modelPrefix: PREFIX,
          environment: 'production',
        });
      expect(build).toThrow(UserError);
      expect(build).toThrow(message);
    });

    it('a metric the thresholds require but the file lacks', () => {
      expect(() => report({ top1: 0.9, loss: 0.2 })).toThrow(UserError);
      expect(() => report({ top1: 0.9, loss: 0.2 })).toThrow(
        /metrics file out\/metrics.json has no "top5", which the thresholds file requires \(it has top1, loss\)/,
      );
      expect(() => report({ top1: 0.9 })).toThrow(/has no "top5", "loss"/);
    });

    it('parseMetricsFile reads metrics and the declared verdict', () => {
      expect(parseMetricsFile('{"passed": true, "top1": 0.5}', 'f')).toEqual({
        metrics: new Map([['top1', 0.5]]),
        declaredPassed: true,
      });
      expect(parseMetricsFile('{"top1": 0.5}', 'f').declaredPassed).toBeUndefined();
    });
  });

  it('thresholds: min above max is refused', () => {
    expect(() => parseThresholds('{"metrics":{"a":{"min":2,"max":1}}}', 'g.json')).toThrow(
      /min \(2\) is above max/,
    );
  });
});
