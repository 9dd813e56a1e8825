import { markdownTable, textTable } from '../../src/core/markdown';

/** Splits a GFM table row into cells the way GitHub does: on pipes not escaped by a backslash. */
function cells(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\\' && i + 1 < line.length) {
      cur += line[i] + line[i + 1];
      i++;
    } else if (line[i] === '|') {
      out.push(cur);
      cur = '';
    } else cur += line[i];
  }
  out.push(cur);
  return out.slice(1, -1).map((c) => c.trim());
}

describe('markdownTable', () => {
  it('renders a header, a separator and rows', () => {
    expect(markdownTable(['a', 'b'], [['1', '2']])).toBe('| a | b |\n| --- | --- |\n| 1 | 2 |');
  });

  it('keeps pipes, backslashes and newlines from breaking a row', () => {
    const nasty = ['x | y', 'two\nlines\r\nthree\rfour', 'ends with \\', 'a \\| b'];
    const table = markdownTable(['h1', 'h2', 'h3', 'h4'], [nasty]);
    const lines = table.split('\n');
    expect(lines).toHaveLength(3);
    expect(cells(lines[2])).toHaveLength(4);
    expect(lines[2]).toContain('x \\| y');
    expect(lines[2]).toContain('two lines three four');
  });

  it('renders a header-only table when there are no rows', () => {
    expect(markdownTable(['a'], [])).toBe('| a |\n| --- |');
  });
});

describe('textTable', () => {
  it('pads columns to the widest cell', () => {
    expect(
      textTable(
        ['name', 'v'],
        [
          ['a', '1'],
          ['longer', '22'],
        ],
      ),
    ).toBe('name    v\na       1\nlonger  22');
  });
});
