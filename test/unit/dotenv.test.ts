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
    ['A=1\nnot an assignment SECRET123\n', 2],
    ['A=1\n\n\n1BAD=SECRET123\n', 4],
    ['export SECRET123\n', 1],
    ['A-B=SECRET123\n', 1],
  ])('names the file and line of a bad line, never its text', (text, line) => {
    let message = '';
    try {
      parseDotenv(text as string, 'config/dev.env');
    } catch (err) {
      expect(err).toBeInstanceOf(UserError);
      message = (err as Error).message;
    }
    expect(message).toMatch(new RegExp(`^config/dev\\.env:${line}: expected KEY=value`));
    expect(message).not.toMatch(/SECRET/);
  });

  it.each(['A="open SECRET123', "A='open SECRET123", 'A="SECRET123" trailing'])(
    'rejects a broken quoted value without echoing it: %s',
    (line) => {
      expect(() => parseDotenv(`B=1\n${line}\n`, 'dev.env')).toThrow(/^dev\.env:2: the quoted value of A /);
      expect(() => parseDotenv(`B=1\n${line}\n`, 'dev.env')).not.toThrow(/SECRET/);
    },
  );
});
