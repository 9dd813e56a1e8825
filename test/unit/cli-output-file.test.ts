import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseCliArgs } from '../../src/cli/args';
import { cli, type CliIo } from '../../src/cli/main';
import { formatOutputLines, outputEnvName, shellQuote } from '../../src/cli/output-file';
import { needsModelCommand } from '../../src/commands/needs-model';
import { optionsOf } from '../../src/commands';
import { configToml, TempRepo } from '../helpers/git-repo';

/** What bash sees after sourcing the file: the variable's exact value. */
function sourced(file: string, name: string): string {
  return execFileSync('bash', ['-c', `set -eu; . "$1"; printf '%s' "\${${name}}"`, 'bash', file], {
    encoding: 'utf8',
  });
}

describe('output file lines', () => {
  it('names outputs MP_ + upper snake', () => {
    expect(outputEnvName('needs-model')).toBe('MP_NEEDS_MODEL');
    expect(outputEnvName('model.uri')).toBe('MP_MODEL_URI');
  });

  it('quotes values so bash gets them back byte for byte', () => {
    const tricky = {
      matrix: '[{"name":"search","config-path":"a b/c.toml"}]',
      reason: "it's $HOME and `date` and \\n\nsecond line",
      empty: '',
    };
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-outfile-'));
    const file = path.join(dir, 'out.env');
    writeFileSync(file, formatOutputLines(tricky));
    expect(sourced(file, 'MP_MATRIX')).toBe(tricky.matrix);
    expect(sourced(file, 'MP_REASON')).toBe(tricky.reason);
    expect(sourced(file, 'MP_EMPTY')).toBe('');
    expect(shellQuote("a'b")).toBe("'a'\\''b'");
  });
});

describe('parseCliArgs', () => {
  const specs = optionsOf(needsModelCommand);

  it('reads --output-file without taking it for an option of the command', () => {
    const a = parseCliArgs(['needs-model', '--output-file', 'o.env', '--force'], specs);
    expect(a.outputFile).toBe('o.env');
    expect(a.inputs).toEqual({ force: 'true' });
  });

  it('turns --no-<boolean> into false and rejects it next to the flag itself', () => {
    expect(parseCliArgs(['needs-model', '--no-force'], specs).inputs).toEqual({ force: 'false' });
    expect(() => parseCliArgs(['needs-model', '--no-force', '--force'], specs)).toThrow(/conflicts/);
    expect(() => parseCliArgs(['needs-model', '--no-bucket'], specs)).toThrow(/no-bucket/);
  });
});

describe('cli --output-file', () => {
  function io(cwd: string): CliIo & { out: string[]; err: string[] } {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, cwd, env: {}, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t) };
  }

  it('appends the outputs of a real run on the local backend', async () => {
    const repo = new TempRepo();
    repo.write('search-config.toml', configToml('1.2.0')).commit('first');
    const sha = repo.head();
    const file = path.join(repo.dir, 'out', 'outputs.env');
    const first = io(repo.dir);
    expect(await cli(['needs-model', '--local', '--output-file', 'out/outputs.env'], first)).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain("MP_NEEDS_MODEL='true'\n");
    expect(sourced(file, 'MP_MODEL_SHA')).toBe(sha.slice(0, 7));
    expect(sourced(file, 'MP_MODEL_VERSION')).toBe('1.2.0');
    expect(JSON.parse(sourced(file, 'MP_MATRIX'))).toHaveLength(1);
    // a second command appends; sourcing gives the later value
    expect(await cli(['needs-model', '--local', '--output-file', file], io(repo.dir))).toBe(0);
    expect(readFileSync(file, 'utf8').split('MP_NEEDS_MODEL=').length - 1).toBe(2);
  });

  it('writes nothing when the command fails, and says why with exit code 2', async () => {
    const repo = new TempRepo();
    repo.write('readme.txt', 'no config here').commit('first');
    const run = io(repo.dir);
    expect(await cli(['needs-model', '--local', '--output-file', 'o.env'], run)).toBe(2);
    expect(() => readFileSync(path.join(repo.dir, 'o.env'))).toThrow();
    expect(run.err.join('\n')).toMatch(/search-config\.toml/);
  });

  it('names an unwritable output file', async () => {
    const repo = new TempRepo();
    repo.write('search-config.toml', configToml('1.0.0')).commit('first');
    repo.write('blocker', 'a file, not a folder');
    const run = io(repo.dir);
    expect(await cli(['needs-model', '--local', '--output-file', 'blocker/o.env'], run)).toBe(2);
    expect(run.err.join('\n')).toMatch(/--output-file blocker\/o\.env/);
  });
});
