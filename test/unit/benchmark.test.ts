import { compareBenchmarks, extractMetrics, headline, parseThresholds } from '../../src/core/benchmark';
import { UserError } from '../../src/core/errors';

const thresholds = parseThresholds(
  JSON.stringify({
    metrics: {
      top1: { better: 'higher', warn: 0.005, fail: 0.01 },
      top5: { better: 'higher', fail: 0.01 },
      loss: { better: 'lower', warn: 0.02, fail: 0.05 },
    },
  }),
  'thresholds.json',
);

describe('benchmark gate', () => {
  it('reads metrics at the top level or under "metrics"', () => {
    expect([...extractMetrics({ top1: 0.9, name: 'x', nested: { loss: 0.2 } })]).toEqual([
      ['top1', 0.9],
      ['nested.loss', 0.2],
    ]);
    expect(extractMetrics({ metrics: { top1: 0.5 }, top1: 0.1 }).get('top1')).toBe(0.5);
    expect(extractMetrics([1, 2]).size).toBe(0);
    expect(
      headline(
        new Map([
          ['top1', 0.91234],
          ['loss', 2],
        ]),
      ),
    ).toBe('top1=0.9123 loss=2');
  });

  it('passes a model that is no worse', () => {
    const cur = new Map([
      ['top1', 0.9],
      ['top5', 0.98],
      ['loss', 0.3],
    ]);
    const r = compareBenchmarks(
      thresholds,
      new Map([
        ['top1', 0.9],
        ['top5', 0.99],
        ['loss', 0.29],
      ]),
      cur,
    );
    expect(r.verdict).toBe('ok');
    expect(r.rows.map((x) => x.verdict)).toEqual(['ok', 'ok', 'ok']);
  });

  it('warns between the warn and fail levels and fails beyond', () => {
    const cur = new Map([
      ['top1', 0.9],
      ['top5', 0.98],
      ['loss', 0.3],
    ]);
    const warn = compareBenchmarks(
      thresholds,
      new Map([
        ['top1', 0.893],
        ['top5', 0.98],
        ['loss', 0.3],
      ]),
      cur,
    );
    expect(warn.verdict).toBe('warn');
    expect(warn.rows[0].note).toMatch(/dropped by 0.007/);
    const fail = compareBenchmarks(
      thresholds,
      new Map([
        ['top1', 0.9],
        ['top5', 0.98],
        ['loss', 0.36],
      ]),
      cur,
    );
    expect(fail.verdict).toBe('fail');
    expect(fail.rows[2]).toMatchObject({ metric: 'loss', verdict: 'fail' });
    expect(fail.rows[2].note).toMatch(/rose by 0.06/);
  });

  it('an exact limit is still allowed; float noise is not a drop', () => {
    const cur = new Map([
      ['top1', 0.3],
      ['top5', 0.5],
      ['loss', 0.1],
    ]);
    const r = compareBenchmarks(
      thresholds,
      new Map([
        ['top1', 0.1 + 0.2 - 0.01],
        ['top5', 0.5],
        ['loss', 0.1],
      ]),
      cur,
    );
    expect(r.rows[0].verdict).toBe('warn');
    expect(r.verdict).toBe('warn');
  });

  it('fails when the candidate lacks a metric; passes with a note when there is nothing to compare', () => {
    expect(
      compareBenchmarks(
        thresholds,
        new Map([
          ['top1', 0.9],
          ['top5', 0.9],
        ]),
        undefined,
      ).rows[2],
    ).toMatchObject({
      verdict: 'fail',
      note: 'missing from the candidate results',
    });
    const first = compareBenchmarks(
      thresholds,
      new Map([
        ['top1', 0.9],
        ['top5', 0.9],
        ['loss', 1],
      ]),
      undefined,
    );
    expect(first.verdict).toBe('ok');
    expect(first.rows[0].note).toBe('no current model to compare with');
  });

  it('reads TOML thresholds and rejects bad files clearly', () => {
    const t = parseThresholds('[metrics.top1]\nbetter = "higher"\nfail = 0.01\n', 'gate.toml');
    expect(t.metrics.top1).toEqual({ better: 'higher', fail: 0.01 });
    expect(() => parseThresholds('{', 'g.json')).toThrow(UserError);
    expect(() => parseThresholds('{"metrics":{"a":{"fial":1}}}', 'g.json')).toThrow(/g.json/);
    expect(() => parseThresholds('{"metrics":{"a":{"warn":2,"fail":1}}}', 'g.json')).toThrow(/above fail/);
    expect(() => parseThresholds('{"metrics":{}}', 'g.json')).toThrow(/names no metric/);
  });
});
