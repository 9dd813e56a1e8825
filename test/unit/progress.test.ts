import { createProgress } from '../../src/adapters/system/progress';
import {
  doneLine,
  formatBytes,
  formatEta,
  formatRate,
  LogThrottle,
  progressLine,
} from '../../src/core/progress';

describe('human sizes, rates and times', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1572864000, '1.5 GiB'],
    [5 * 1024 ** 4, '5.0 TiB'],
  ])('formatBytes(%d) = %s', (n, text) => expect(formatBytes(n)).toBe(text));

  it('rates and ETAs', () => {
    expect(formatRate(0)).toBe('-');
    expect(formatRate(150 * 1024 * 1024)).toBe('150.0 MiB/s');
    expect(formatEta(undefined)).toBe('?');
    expect(formatEta(0.2)).toBe('1s');
    expect(formatEta(185)).toBe('3m05s');
    expect(formatEta(7260)).toBe('2h01m');
  });

  it('a progress line has bytes, percent, rate and ETA; the closing line size, time and rate', () => {
    const half = 786432000;
    expect(progressLine({ label: 'upload model.zip', done: half, total: 2 * half, elapsedMs: 5000 })).toBe(
      'upload model.zip: 750.0 MiB / 1.5 GiB (50%), 150.0 MiB/s, ETA 5s',
    );
    expect(progressLine({ label: 'x', done: 2048, elapsedMs: 1000 })).toBe('x: 2.0 KiB, 2.0 KiB/s');
    expect(
      doneLine({ label: 'upload model.zip', done: 1572864000, total: 1572864000, elapsedMs: 8500 }),
    ).toBe('upload model.zip: 1.5 GiB in 9s (176.5 MiB/s)');
  });
});

describe('CI logs: a line every 10 s or 10 %, never a flood', () => {
  it('1.5 GB in 8 MiB steps over 8.5 s gives one line per 10 %', () => {
    const t = new LogThrottle();
    const total = 1572864000;
    const step = 8 * 1024 * 1024;
    let lines = 0;
    for (let done = step, i = 1; done < total; done += step, i++)
      if (t.due(done, total, (8500 * done) / total)) lines++;
    expect(lines).toBe(9); // 10 % .. 90 %; the closing line says 100 %
  });

  it('a slow transfer gets a line every 10 s even between 10 % steps', () => {
    const t = new LogThrottle();
    const due = [0, 5000, 10_000, 15_000, 20_500].map((ms) => t.due(1, 1000, ms));
    expect(due).toEqual([false, false, true, false, true]);
  });

  it('the non-TTY reporter writes throttled lines, then one closing line', () => {
    let now = 0;
    const lines: string[] = [];
    const p = createProgress({ line: (l) => lines.push(l), now: () => now });
    const task = p.start('download model.zip', 100 * 1024 * 1024);
    for (let i = 0; i < 100; i++) {
      now += 100;
      task.advance(1024 * 1024);
    }
    task.done();
    task.done();
    expect(lines).toHaveLength(10);
    expect(lines[0]).toBe('download model.zip: 10.0 MiB / 100.0 MiB (10%), 10.0 MiB/s, ETA 9s');
    expect(lines[9]).toBe('download model.zip: 100.0 MiB in 10s (10.0 MiB/s)');
  });

  it('in a terminal draws a cli-progress bar and ends with the closing line', () => {
    let drawn = '';
    const tty = {
      isTTY: true,
      columns: 120,
      write: (s: string) => ((drawn += s), true),
      cursorTo: () => true,
      clearLine: () => true,
      moveCursor: () => true,
    } as unknown as NodeJS.WriteStream;
    const lines: string[] = [];
    const p = createProgress({ line: (l) => lines.push(l), tty });
    const task = p.start('upload model.zip', 10 * 1024 * 1024);
    task.advance(5 * 1024 * 1024);
    task.done();
    expect(drawn).toContain('upload model.zip [');
    expect(drawn).toMatch(/\/ 10\.0 MiB/);
    expect(lines).toEqual([expect.stringMatching(/^upload model\.zip: 5\.0 MiB in /)]);
  });
});
