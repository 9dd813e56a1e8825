import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { cli, type CliIo } from '../../src/cli/main';
import { COMMANDS, optionsOf } from '../../src/commands';
import { VERSION } from '../../src/version';
import { configToml, TempRepo } from '../helpers/git-repo';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], cwd: string, env: Record<string, string> = {}): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (t) => (stdout += t.endsWith('\n') ? t : t + '\n'),
    stderr: (t) => (stderr += t.endsWith('\n') ? t : t + '\n'),
    env,
    cwd,
  };
  const code = await cli(argv, io);
  return { code, stdout, stderr };
}

/** Bad input: exit 2, one `error:` line on stderr, nothing that looks like a stack trace. */
function expectBadInput(r: Captured, message: RegExp): void {
  expect(r.code).toBe(2);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

function repoAt(version: string): TempRepo {
  const repo = new TempRepo();
  repo.write('search-config.toml', configToml(version));
  repo.commit('first');
  return repo;
}

describe('model-pipeline CLI', () => {
  let repo: TempRepo;
  beforeAll(() => {
    repo = repoAt('1.0.0');
  });

  it('runs needs-model and prints the outputs as JSON on stdout, logs on stderr', async () => {
    const r = await run(['needs-model', '--json', '--local'], repo.dir);
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout) as { command: string; outputs: Record<string, unknown> };
    expect(parsed.command).toBe('needs-model');
    const sha7 = repo.head().slice(0, 7);
    // typed: a boolean and a list, not their text (action outputs stay strings)
    expect(parsed.outputs).toEqual({
      'needs-model': true,
      reason: `new model: this is the repository's first commit, with nothing before it to compare with; no model 1.0.0-${sha7} in the store`,
      'model-prefix': `1.0.0-${sha7}/`,
      'model-version': '1.0.0',
      'model-sha': sha7,
      'model-uri': `file://${repo.dir}/.model-store/1.0.0-${sha7}/`,
      matrix: [expect.objectContaining({ 'model-prefix': `1.0.0-${sha7}/`, 'model-version': '1.0.0' })],
      rule: 'new-model',
      'promote-matrix': [expect.objectContaining({ 'model-prefix': `1.0.0-${sha7}/` })],
    });
  });

  it('prints a readable line without --json', async () => {
    const r = await run(['needs-model', '--local'], repo.dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^1\.0\.0-[0-9a-f]{7}\/: needs a model \(new-model\): new model/);
  });

  it('takes flags before the command, and --config for --config-path', async () => {
    const other = new TempRepo();
    other.write('models/m.toml', configToml('2.0.0')).commit('first');
    const r = await run(['--config', 'models/m.toml', '--local', 'needs-model', '--json'], other.dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).outputs['model-version']).toBe('2.0.0');
  });

  it('exits 1 when the work fails, with the message and no stack trace', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-loop-'));
    symlinkSync(path.join(dir, 'loop'), path.join(dir, 'loop'));
    const r = await run(['needs-model', '--local', '--local-store', path.join(dir, 'loop')], repo.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: .*loop/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('reports an error as JSON on stdout with --json', async () => {
    const r = await run(['needs-model', '--json', '--config', 'none.toml'], repo.dir);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({
      error: `config file none.toml not found (in ${repo.dir}); set --config-path`,
      exitCode: 2,
    });
  });

  it('prints --version', async () => {
    const r = await run(['--version'], repo.dir);
    expect(r).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('prints general help listing every command', async () => {
    for (const argv of [['--help'], ['-h']]) {
      const r = await run(argv, repo.dir);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Usage: model-pipeline <command> [options]');
      for (const name of Object.keys(COMMANDS)) expect(r.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    }
  });

  it.each(Object.keys(COMMANDS))('prints help for %s with every flag and output', async (name) => {
    const cmd = COMMANDS[name];
    const r = await run([name, '--help'], repo.dir);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`Usage: model-pipeline ${name} [options]`);
    expect(r.stdout).toContain(cmd.summary);
    for (const spec of optionsOf(cmd)) expect(r.stdout).toContain(`--${spec.name}`);
    for (const out of cmd.outputs) expect(r.stdout).toContain(`  ${out.name}: `);
  });

  describe('bad input: exit 2 and one clear line', () => {
    it('no command', async () => {
      expectBadInput(await run([], repo.dir), /no command given; expected one of: .*needs-model/);
    });

    it('unknown command', async () => {
      expectBadInput(
        await run(['train-all'], repo.dir),
        /unknown command "train-all"; expected one of: .*needs-model/,
      );
    });

    it('unknown flag', async () => {
      expectBadInput(await run(['needs-model', '--bukket', 'x'], repo.dir), /--bukket/);
    });

    it('extra arguments', async () => {
      expectBadInput(await run(['needs-model', 'extra'], repo.dir), /unexpected arguments: extra/);
    });

    it('a boolean flag given a word that is not true or false', async () => {
      expectBadInput(
        await run(['needs-model', '--local', '--force', 'maybe'], repo.dir),
        /^error: --force takes true or false \(or write --force \/ --no-force\), got "maybe"$/,
      );
    });

    it('a bad duration names its flag as written on the command line', async () => {
      expectBadInput(
        await run(['train', '--local', '--max-runtime', '6x'], repo.dir),
        /^error: --max-runtime must be a positive duration such as 6h, 90m, 1h30m or 3600 \(seconds\); got "6x"$/,
      );
    });

    it('a flag without its value', async () => {
      expectBadInput(
        await run(['needs-model', '--local', '--config-path'], repo.dir),
        /^error: --config-path needs a value \(--config-path <value> or --config-path=<value>\)$/,
      );
    });

    it('--local with --backend aws', async () => {
      expectBadInput(
        await run(['needs-model', '--local', '--backend', 'aws'], repo.dir),
        /--local conflicts with --backend aws/,
      );
    });

    it('missing config', async () => {
      expectBadInput(
        await run(['needs-model', '--local', '--config-path', 'models/none.toml'], repo.dir),
        /config file models\/none\.toml not found .*set --config-path$/,
      );
    });

    it('config-path that is a folder', async () => {
      const r = await run(['needs-model', '--local', '--config-path', '.git'], repo.dir);
      expectBadInput(r, /--config-path \.git is a folder/);
    });

    it('broken TOML', async () => {
      const bad = new TempRepo();
      bad.write('search-config.toml', 'version = "1.0.0"\n[training\nepochs = 1\n').commit('broken');
      expectBadInput(
        await run(['needs-model', '--local'], bad.dir),
        /^error: search-config\.toml:2:\d+: invalid TOML/,
      );
    });

    it('bad version', async () => {
      const bad = repoAt('latest');
      expectBadInput(
        await run(['needs-model', '--local'], bad.dir),
        /^error: search-config\.toml:1: key "version" must be a semantic version like 1\.2\.3, got "latest"$/,
      );
    });

    it('bad environment name', async () => {
      expectBadInput(
        await run(['promote', '--local', '--environment', 'prod'], repo.dir),
        /--environment must be one of development, staging, production; got "prod"/,
      );
    });

    it('bad environment name from a variable', async () => {
      expectBadInput(
        await run(['promote', '--local'], repo.dir, { MODEL_PIPELINE_ENVIRONMENT: 'prod' }),
        /environment \(from \$MODEL_PIPELINE_ENVIRONMENT\) must be one of/,
      );
    });

    it('bad boolean', async () => {
      expectBadInput(
        await run(['needs-model', '--local'], repo.dir, { MODEL_PIPELINE_FORCE: 'perhaps' }),
        /force \(from \$MODEL_PIPELINE_FORCE\) must be true or false, got "perhaps"/,
      );
    });

    it('aws backend without a bucket', async () => {
      expectBadInput(
        await run(['needs-model', '--backend', 'aws'], repo.dir),
        /the aws backend needs a bucket/,
      );
    });
  });
});
