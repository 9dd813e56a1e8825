import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { configToml, TempRepo } from '../helpers/git-repo';

/** The bundled CLI (dist/, as `npm run bundle` builds it), run as a user runs it. */
const CLI = path.resolve(__dirname, '../../dist/cli/index.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// a clean environment: the test runner's own GITHUB_* / MODEL_PIPELINE_* variables must not leak in
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(GITHUB_|MODEL_PIPELINE_|CIRCLE|CI$|INPUT_)/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

function cli(cwd: string, args: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    env: { ...baseEnv(), ...env },
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("a user's first hour with the bundled CLI", () => {
  const repo = new TempRepo();
  repo.write('search-config.toml', configToml('1.0.0'));
  repo.commit('model');

  describe('one dialect per entry point, booleans in every spelling', () => {
    it('rotate names --no-dry-run on the CLI and dry_run in the orb', () => {
      const plain = cli(repo.dir, ['rotate', '--local']);
      expect(plain.code).toBe(0);
      expect(plain.stdout).toMatch(/to delete, run again with --no-dry-run$/m);
      expect(plain.stdout).not.toMatch(/set dry-run/);
      const orb = cli(repo.dir, ['rotate', '--local'], { MODEL_PIPELINE_DIALECT: 'orb' });
      expect(orb.stdout).toMatch(/run again with dry_run: false$/m);
    });

    it.each([
      [['--dry-run', 'false'], false],
      [['--dry-run=false'], false],
      [['--no-dry-run'], false],
      [['--dry-run=true'], true],
      [['--dry-run', 'true'], true],
      [['--dry-run'], true],
      [[], true],
    ])('rotate %j -> dry-run %s', (flags, dryRun) => {
      const r = cli(repo.dir, ['rotate', '--local', '--json', ...flags]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as { outputs: { 'dry-run': boolean } }).outputs['dry-run']).toBe(dryRun);
    });

    it('a boolean given a non-boolean is bad input naming the flag', () => {
      const r = cli(repo.dir, ['rotate', '--local', '--dry-run=maybe']);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(
        'error: --dry-run takes true or false (or write --dry-run / --no-dry-run), got "maybe"',
      );
    });

    it('a bad value names the flag, not "(from input)"', () => {
      const r = cli(repo.dir, ['promote', '--local', '--environment', 'prod']);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(
        'error: --environment must be one of development, staging, production; got "prod"',
      );
    });

    it('a missing config names --config-path', () => {
      const r = cli(repo.dir, ['needs-model', '--local', '--config-path', 'none.toml']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/; set --config-path$/m);
    });
  });

  describe('help per command', () => {
    it('lists only what rotate reads, then the global flags, with defaults and variables', () => {
      for (const args of [
        ['rotate', '--help'],
        ['help', 'rotate'],
      ]) {
        const r = cli(repo.dir, args);
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(/^Usage: model-pipeline rotate/);
        expect(r.stdout).toContain('--grace-days <value>');
        expect(r.stdout).toContain('--dry-run, --no-dry-run');
        expect(r.stdout).toMatch(/default: true; env: MODEL_PIPELINE_DRY_RUN/);
        expect(r.stdout).toMatch(
          /--region <value>\n.*default: us-east-1; env: MODEL_PIPELINE_REGION, AWS_REGION, AWS_DEFAULT_REGION\)/,
        );
        for (const absent of ['--ami-version', '--environment', '--train-timeout', '--packer-version'])
          expect(r.stdout).not.toContain(absent);
        const global = r.stdout.slice(r.stdout.indexOf('Global flags:'));
        for (const flag of ['--json', '--local', '--output-file', '--settings-file'])
          expect(global).toContain(flag);
      }
    });

    it('build-ami offers no --local and no store options', () => {
      const r = cli(repo.dir, ['help', 'build-ami']);
      expect(r.stdout).toContain('--ami-version <value>');
      expect(r.stdout).not.toMatch(/--local\b/);
      expect(r.stdout).not.toContain('--bucket');
    });

    it.each([
      ['alias', ['--config-path', '--sha'], ['--alias <value>', '--bucket <value>']],
      ['find', ['--config-path', '--sha'], ['--bucket <value>']],
      ['sweep', ['--config-path', '--sha'], ['--backend <', '--bucket <value>']],
      ['demote', ['--sha'], ['--config-path, --config <value>', '--bucket <value>']],
      ['rotate', ['--sha'], ['--config-path, --config <value>']],
      ['build-ami', ['--config-path', '--bucket'], ['--sha <value>']],
      // promote, describe and status fall back to the model of this commit: config-path at sha
      ['promote', [], ['--config-path, --config <value>', '--sha <value>']],
    ])('help %s lists only the shared options it reads', (cmd, absent, present) => {
      const r = cli(repo.dir, ['help', cmd]);
      expect(r.code).toBe(0);
      for (const flag of absent) expect(r.stdout).not.toMatch(new RegExp(`^  ${flag}\\b`, 'm'));
      for (const flag of present) expect(r.stdout).toContain(`  ${flag}`);
    });

    it('help sweep shows the CI API addresses with their defaults and variables (read nowhere else)', () => {
      const r = cli(repo.dir, ['help', 'sweep']);
      expect(r.stdout).toMatch(
        /--github-api-url <value>\n.*default: https:\/\/api\.github\.com; env: MODEL_PIPELINE_GITHUB_API_URL, GITHUB_API_URL\)/,
      );
      expect(r.stdout).toMatch(
        /--circleci-api-url <value>\n.*default: https:\/\/circleci\.com; env: MODEL_PIPELINE_CIRCLECI_API_URL\)/,
      );
    });

    it('a flag the command does not read is one clear line and exit 2, nothing done', () => {
      const r = cli(repo.dir, ['alias', '--local', '--config-path', 'x.toml']);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toEqual([
        'error: alias does not read --config-path (needs-model, train, promote, demote, ... do); remove it',
      ]);
      const find = cli(repo.dir, ['find', '--local', '--sha', 'abc1234']);
      expect(find.code).toBe(2);
      expect(find.stderr).toMatch(/^error: find does not read --sha \(/);
    });

    it('help for an unknown command lists the commands', () => {
      const r = cli(repo.dir, ['help', 'fly']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/unknown command "fly"; expected one of: needs-model/);
    });
  });

  describe('settings typos', () => {
    it('an unknown MODEL_PIPELINE_* key in a settings file warns with the nearest name', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'mp-settings-'));
      const file = path.join(dir, 'dev.env');
      writeFileSync(file, 'MODEL_PIPELINE_BUKET=foo\nMODEL_PIPELINE_LOCAL_STORE=.model-store\n');
      const r = cli(repo.dir, ['needs-model', '--local', '--settings-file', file]);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(
        `warning: settings file ${file} sets MODEL_PIPELINE_BUKET, which no setting reads; did you mean MODEL_PIPELINE_BUCKET?`,
      );
    });

    it('and so does one in the environment; known variables stay quiet', () => {
      const r = cli(repo.dir, ['needs-model', '--local'], {
        MODEL_PIPELINE_GRACE_DAY: '3',
        MODEL_PIPELINE_DEBUG: '0',
        MODEL_PIPELINE_REGION: 'eu-west-1',
      });
      expect(r.code).toBe(0);
      const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning:'));
      expect(warnings).toEqual([
        'warning: the environment sets MODEL_PIPELINE_GRACE_DAY, which no setting reads; did you mean MODEL_PIPELINE_GRACE_DAYS?',
      ]);
    });
  });

  describe('--json and --local', () => {
    it('--json prints booleans and lists typed', () => {
      const r = cli(repo.dir, ['needs-model', '--local', '--json']);
      const out = JSON.parse(r.stdout) as { outputs: Record<string, unknown> };
      expect(out.outputs['needs-model']).toBe(true);
      expect(Array.isArray(out.outputs.matrix)).toBe(true);
      expect(typeof out.outputs.reason).toBe('string');
    });

    it.each(['build-ami', 'prune-amis'])('%s --local says what it needs instead of trying AWS', (cmd) => {
      const r = cli(repo.dir, [cmd, '--local'], { AWS_EC2_METADATA_DISABLED: 'true' });
      expect(r.code).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(
          `^error: ${cmd} has no local mode: .*needs AWS credentials and a region .*run it without --local$`,
        ),
      );
    });
  });

  describe('progress and human sizes', () => {
    it('train --local reports the 9 MiB data download with its size and rate, in MiB', () => {
      const demo = new TempRepo();
      cpSync(path.resolve(__dirname, '../../examples/demo-repo'), demo.dir, { recursive: true });
      demo.commit('demo');
      mkdirSync(path.join(demo.dir, '.model-store'));
      execFileSync('python3', [
        '-c',
        'import zipfile,sys; z=zipfile.ZipFile(sys.argv[1],"w"); z.writestr("data.csv","query,doc\\na,b\\n"); z.writestr("pad.bin", bytes(9*1024*1024)); z.close()',
        path.join(demo.dir, '.model-store', 'raw_source_data.zip'),
      ]);
      const r = cli(demo.dir, ['train', '--local']);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(
        /^download raw_source_data\.zip: 9\.0 MiB in \d+ (ms|s) \([\d.]+ (KiB|MiB|GiB)\/s\)$/m,
      );
      expect(r.stderr).toMatch(/^raw_source_data\.zip \(9\.0 MiB\) copied to the instance$/m);
      expect(r.stderr).toMatch(/^uploaded model\.zip \(\d+ B\) to /m);
    });

    it('train --local reports a 9 MiB model upload as it goes (a line per 10 %), then its size and rate', () => {
      const demo = new TempRepo();
      cpSync(path.resolve(__dirname, '../../examples/demo-repo'), demo.dir, { recursive: true });
      demo.commit('demo');
      const big =
        'python3 train.py && python3 -c \'import zipfile; z = zipfile.ZipFile("model.zip", "w"); z.writestr("weights.bin", bytes(9 * 1024 * 1024)); z.close()\'';
      const r = cli(demo.dir, ['train', '--local', '--data-key', 'none', '--train-command', big]);
      expect(r.stderr).not.toMatch(/^error/m);
      expect(r.code).toBe(0);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('upload model.zip: '));
      const partial = lines.filter((l) => /^upload model\.zip: [\d.]+ MiB \/ 9\.0 MiB \(\d+%\), /.test(l));
      expect(partial.length).toBeGreaterThanOrEqual(3);
      expect(partial.length).toBeLessThanOrEqual(10);
      expect(lines[lines.length - 1]).toMatch(
        /^upload model\.zip: 9\.0 MiB in \d+ (ms|s) \([\d.]+ (KiB|MiB|GiB)\/s\)$/,
      );
    });
  });

  describe('what the CLI writes into the repository', () => {
    it("leaves git status clean with the README's .gitignore block (store, fetched model)", () => {
      const readme = readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
      const block = /```gitignore\n([\s\S]*?)```/.exec(readme)?.[1];
      expect(block).toContain('.model-store/');
      const demo = new TempRepo();
      cpSync(path.resolve(__dirname, '../../examples/demo-repo'), demo.dir, { recursive: true });
      demo.write('.gitignore', block!);
      demo.commit('demo');
      for (const args of [
        ['train', '--local', '--data-key', 'none'],
        ['promote', '--local', '--environment', 'development'],
        ['fetch-model', '--local', '--environment', 'development', '--dest', 'models/current'],
      ]) {
        const r = cli(demo.dir, args);
        expect(r.stderr).not.toMatch(/^error/m);
        expect(r.code).toBe(0);
      }
      expect(readFileSync(path.join(demo.dir, 'models/current/weights.txt'), 'utf8')).toMatch(
        /^[0-9a-f]{64}/,
      );
      expect(execFileSync('git', ['status', '--porcelain'], { cwd: demo.dir, encoding: 'utf8' })).toBe('');
    });
  });

  describe('inside GitHub Actions (GITHUB_ACTIONS=true)', () => {
    it('writes the outputs file and the step summary like the action', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'mp-gha-'));
      const outputs = path.join(dir, 'output');
      const summary = path.join(dir, 'summary');
      writeFileSync(outputs, '');
      const r = cli(repo.dir, ['needs-model', '--local'], {
        GITHUB_ACTIONS: 'true',
        GITHUB_OUTPUT: outputs,
        GITHUB_STEP_SUMMARY: summary,
      });
      expect(r.code).toBe(0);
      const text = readFileSync(outputs, 'utf8');
      expect(text).toMatch(/^needs-model<<(\S+)\ntrue\n\1$/m);
      expect(text).toMatch(/^matrix<<(\S+)\n\[.*\]\n\1$/m);
      expect(readFileSync(summary, 'utf8')).toMatch(/needs-model|1\.0\.0/);
    });

    it('reports a failure as an ::error:: annotation', () => {
      const r = cli(repo.dir, ['needs-model', '--local', '--config-path', 'none.toml'], {
        GITHUB_ACTIONS: 'true',
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^::error::config file none\.toml not found .*; set --config-path$/m);
    });

    it('turns warnings into ::warning:: annotations', () => {
      const r = cli(repo.dir, ['needs-model', '--local'], {
        GITHUB_ACTIONS: 'true',
        MODEL_PIPELINE_BUKET: 'x',
      });
      expect(r.stderr).toMatch(/^::warning::the environment sets MODEL_PIPELINE_BUKET/m);
    });
  });

  describe('inside CircleCI (CIRCLECI=true)', () => {
    const circle = (dir: string): Record<string, string> => ({
      CIRCLECI: 'true',
      CIRCLE_SHA1: repo.head(),
      BASH_ENV: path.join(dir, 'bash_env'),
    });

    it('exports the outputs to later steps through $BASH_ENV, quoted so JSON and spaces survive', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'mp-circle-'));
      const env = circle(dir);
      const r = cli(repo.dir, ['needs-model', '--local'], env);
      expect(r.code).toBe(0);
      const text = readFileSync(env.BASH_ENV, 'utf8');
      expect(text).toMatch(/^export MP_NEEDS_MODEL='true'$/m);
      // what a program started by a later step sees: CircleCI sources $BASH_ENV in that step's shell
      const later = spawnSync(
        'bash',
        [
          '-c',
          `. "$1"; node -e 'console.log(JSON.stringify([process.env.MP_REASON, process.env.MP_MATRIX]))'`,
          'bash',
          env.BASH_ENV,
        ],
        { encoding: 'utf8' },
      );
      const [reason, matrix] = JSON.parse(later.stdout) as [string, string];
      expect(reason).toMatch(/ /);
      expect(JSON.parse(matrix)).toEqual([expect.objectContaining({ 'model-version': '1.0.0' })]);
    });

    it('writes the Markdown summary where --summary-file says (CircleCI has no step summary)', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'mp-circle-'));
      const r = cli(
        repo.dir,
        ['needs-model', '--local', '--summary-file', path.join(dir, 'summary.md')],
        circle(dir),
      );
      expect(r.code).toBe(0);
      expect(readFileSync(path.join(dir, 'summary.md'), 'utf8')).toMatch(/1\.0\.0/);
    });

    it('reports errors and warnings as plain lines (no GitHub annotations) and exports nothing on failure', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'mp-circle-'));
      const env: Record<string, string> = { ...circle(dir), MODEL_PIPELINE_BUKET: 'x' };
      const r = cli(repo.dir, ['needs-model', '--local', '--config-path', 'none.toml'], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^warning: the environment sets MODEL_PIPELINE_BUKET/m);
      expect(r.stderr).toMatch(/^error: config file none\.toml not found .*; set --config-path$/m);
      expect(r.stderr).not.toContain('::');
      expect(() => readFileSync(env.BASH_ENV, 'utf8')).toThrow(/ENOENT/);
    });
  });
});
