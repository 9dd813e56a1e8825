import { UserError } from '../../src/core/errors';
import { formatDuration, parseDuration } from '../../src/core/duration';

describe('parseDuration', () => {
  it.each([
    ['6h', 21600],
    ['90m', 5400],
    ['1h30m', 5400],
    ['1h 30m', 5400],
    ['45s', 45],
    ['2d', 172800],
    ['3600', 3600],
    [' 6H ', 21600],
  ])('%j -> %i s', (text, secs) => {
    expect(parseDuration(text)).toBe(secs);
  });

  it.each(['', '0', '0h', '-1h', '6 hours', 'h', '1.5h', '6x'])('rejects %j naming the setting', (text) => {
    expect(() => parseDuration(text, 'max-runtime')).toThrow(UserError);
    expect(() => parseDuration(text, 'max-runtime')).toThrow(/max-runtime/);
  });
});

describe('formatDuration', () => {
  it.each([
    [21600, '6h'],
    [5400, '1h30m'],
    [45, '45s'],
    [0, '0s'],
    [90061, '1d1h1m1s'],
  ])('%i -> %s', (secs, text) => {
    expect(formatDuration(secs)).toBe(text);
  });

  it('round-trips', () => {
    for (const s of [1, 59, 61, 3600, 86399, 90061]) expect(parseDuration(formatDuration(s))).toBe(s);
  });
});
