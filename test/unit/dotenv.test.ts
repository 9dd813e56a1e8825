import { parseDotenv } from '../../src/core/dotenv';
import { UserError } from '../../src/core/errors';

describe('parseDotenv', () => {
  it('reads assignments, export, comments, blank lines and quotes', () => {
    const text = [
      '# settings for dev',
      '',
      'MODEL_PIPELINE_BUCKET=my-bucket',
      'export MODEL_PIPELINE_REGION = eu-west-1',
      '  INDENTED=yes  ',
      'DOUBLE="two words"',
      'SINGLE=\'it has # and "quotes"\'',
      'ESCAPES="a\\nb \\"q\\" c\\\\d"',
      "RAW='a\\nb'",
      'TRAILING=value # a comment',
      'HASH=a#b',
      'EMPTY=',
      'EMPTY_QUOTED=""',
      'QUOTED_COMMENT="x y" # why',
      "SINGLE_COMMENT='x' # why",
      'URL=https://example.com/a?b=c',
    ].join('\r\n');
    expect(parseDotenv(text, 'config/dev.env')).toEqual({
      MODEL_PIPELINE_BUCKET: 'my-bucket',
      MODEL_PIPELINE_REGION: 'eu-west-1',
      INDENTED: 'yes',
      DOUBLE: 'two words',
      SINGLE: 'it has # and "quotes"',
      ESCAPES: 'a\nb "q" c\\d',
      RAW: 'a\\nb',
      TRAILING: 'value',
      HASH: 'a#b',
      EMPTY: '',
      EMPTY_QUOTED: '',
      QUOTED_COMMENT: 'x y',
      SINGLE_COMMENT: 'x',
      URL: 'https://example.com/a?b=c',
    });
  });

  it('lets a later line win', () => {
    expect(parseDotenv('A=1\nA=2\n', 'x.env')).toEqual({ A: '2' });
  });

  it.each([
    ['A=1\nnot an assignment\n', 2, 'not an assignment'],
    ['A=1\n\n\n1BAD=2\n', 4, '1BAD=2'],
    ['export\n', 1, 'export'],
    ['A-B=1\n', 1, 'A-B=1'],
  ])('names the file and line of a bad line', (text, line, shown) => {
    expect(() => parseDotenv(text, 'config/dev.env')).toThrow(
      new UserError(`config/dev.env:${line}: expected KEY=value, got "${shown}"`),
    );
  });

  it.each(['A="open', "A='open", 'A="x" trailing'])('rejects a broken quoted value: %s', (line) => {
    expect(() => parseDotenv(`B=1\n${line}\n`, 'dev.env')).toThrow(/^dev\.env:2: /);
  });
});
