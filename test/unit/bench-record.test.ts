import { stats } from '../../bench/lib';
import { RESULTS_HEADER, withRunSection } from '../../bench/record';

describe('bench statistics', () => {
  it('gives min, median and max of odd and even sample counts', () => {
    expect(stats([3, 1, 2])).toEqual({ n: 3, min: 1, median: 2, max: 3 });
    expect(stats([4, 1, 3, 2])).toEqual({ n: 4, min: 1, median: 2.5, max: 4 });
    expect(stats([]).n).toBe(0);
    expect(Number.isNaN(stats([]).median)).toBe(true);
  });
});

describe('bench/RESULTS.md sections', () => {
  it('starts from the header and puts the newest run first', () => {
    const one = withRunSection(undefined, '2026-01-01', '## run one');
    expect(one.startsWith(RESULTS_HEADER)).toBe(true);
    const two = withRunSection(one, '2026-01-02', '## run two');
    expect(two.indexOf('## run two')).toBeLessThan(two.indexOf('## run one'));
  });

  it('replaces the section of the same run in place, leaving the others alone', () => {
    let text = withRunSection(undefined, 'a', '## a old');
    text = withRunSection(text, 'b', '## b');
    text = withRunSection(text, 'a', '## a new costs $1 and $& stays literal');
    expect(text).not.toContain('## a old');
    expect(text).toContain('## a new costs $1 and $& stays literal');
    expect(text.match(/<!-- run:a -->/g)).toHaveLength(1);
    expect(text.indexOf('## b')).toBeLessThan(text.indexOf('## a new'));
  });

  it('adds the runs marker to a hand-edited file that lost it', () => {
    const text = withRunSection('# Benchmarks\n\nnotes by hand\n', 'x', '## x');
    expect(text).toContain('notes by hand');
    expect(text).toContain('<!-- run:x -->\n## x\n<!-- /run:x -->');
  });
});
