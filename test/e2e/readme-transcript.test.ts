import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { mainJobTranscript, normalizeTranscript } from '../../src/meta/transcript';

const ROOT = path.resolve(__dirname, '../..');

function readmeSection(name: string): string {
  const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = `<!-- ${name}:start -->\n`;
  const i = text.indexOf(start);
  const j = text.indexOf(`<!-- ${name}:end -->`);
  if (i < 0 || j < i) throw new Error(`README.md has no ${name} markers`);
  return text.slice(i + start.length, j);
}

describe("the README's transcript of the main job", () => {
  // one real run of `bash examples/local-pipeline.sh` through the bundled CLI (dist/)
  let fresh: string;
  beforeAll(() => {
    fresh = mainJobTranscript(ROOT);
  }, 120_000);

  it('is what the bundled CLI prints today, normalized (run `npm run gen` after changing a message)', () => {
    expect(readmeSection('transcript').trimEnd()).toBe(fresh.trimEnd());
  });

  it('shows the progress lines a CI log gets for the 24 MiB download, then its closing line', () => {
    const lines = fresh.split('\n');
    const progress = lines.filter((l) =>
      /^download raw_source_data\.zip: [\d.]+ MiB \/ 24\.0 MiB \(\d+%\), N MiB\/s, ETA Ns$/.test(l),
    );
    // a line per 10 % step, not one per chunk: never a flood
    expect(progress.length).toBeGreaterThanOrEqual(5);
    expect(progress.length).toBeLessThanOrEqual(10);
    expect(lines).toContain('download raw_source_data.zip: 24.0 MiB in N s (N MiB/s)');
    for (const step of ['== needs-model', '== train', '== promote development', '== status'])
      expect(lines).toContain(step);
  });

  it('normalizes only what changes between runs', () => {
    const raw = [
      'uploaded model.zip (442 B) to file:///tmp/x/model-pipeline-demo.Ab12Cd/repo/.model-store/1.1.0-91d2151/model.zip',
      'prefix          version  sha      created',
      '1.1.0-91d2151/  1.1.0    91d2151  2026-11-30T06:17:24Z',
      'instance local-235a18110b52 launched',
      'download data.zip: 3.0 MiB / 24.0 MiB (12%), 1.2 GiB/s, ETA 0s',
      'download data.zip: 24.0 MiB in 12 ms (1.9 GiB/s)',
    ].join('\n');
    expect(normalizeTranscript(raw)).toBe(
      [
        'uploaded model.zip (442 B) to file:///tmp/model-pipeline-demo.XXXXXX/repo/.model-store/1.1.0-xxxxxxx/model.zip',
        'prefix          version  sha      created',
        '1.1.0-xxxxxxx/  1.1.0    xxxxxxx  YYYY-MM-DDTHH:MM:SSZ',
        'instance local-xxxxxxxxxxxx launched',
        'download data.zip: 3.0 MiB / 24.0 MiB (12%), N MiB/s, ETA Ns',
        'download data.zip: 24.0 MiB in N s (N MiB/s)',
        '',
      ].join('\n'),
    );
  });
});
