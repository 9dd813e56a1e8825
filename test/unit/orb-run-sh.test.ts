import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { OptionSpec } from '../../src/core/options';
import { optionTableLine, paramEnvName } from '../../src/meta/orb';
import { buildCliBin } from '../helpers/cli-bin';
import { configToml, TempRepo } from '../helpers/git-repo';
import { defaultsOf, loadPackedOrb, ROOT, substitute } from '../helpers/orb';

const RUN_SH = path.join(ROOT, 'orb/src/scripts/run.sh');

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function bash(script: string, env: Record<string, string>, cwd: string): Ran {
  const r = spawnSync('bash', ['-c', script], { cwd, env, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Value of a variable after sourcing a dotenv file the way CircleCI sources $BASH_ENV. */
function sourced(file: string, name: string): string {
  const r = spawnSync('bash', ['-c', `set -eu; . "$1"; printf '%s' "\${${name}}"`, 'bash', file], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

/** What a program started by a later step sees (CircleCI sources $BASH_ENV in that step's shell). */
function seenByChild(file: string, name: string): string {
  const r = spawnSync(
    'bash',
    [
      '-c',
      `. "$1"; node -e 'process.stdout.write(process.env[process.argv[1]] ?? "(unset)")' ${name}`,
      'bash',
      file,
    ],
    {
      encoding: 'utf8',
    },
  );
  return r.stdout;
}

function baseEnv(extra: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...extra };
}

describe('run.sh with a recording CLI: parameters become flags', () => {
  const specs: OptionSpec[] = [
    { name: 'config-path', description: '', type: 'string', default: 'search-config.toml' },
    { name: 'bucket', description: '', type: 'string' },
    { name: 'instance-types', description: '', type: 'list', default: 'g5.xlarge' },
    { name: 'root-volume-gib', description: '', type: 'integer', default: '200' },
    { name: 'force', description: '', type: 'boolean', default: 'false' },
    { name: 'wait', description: '', type: 'boolean', default: 'true' },
    { name: 'ssh-private-key', description: '', type: 'string', secret: true, env: ['MP_TEST_SSH_KEY'] },
    { name: 'api-token', description: '', type: 'string', secret: true },
  ];
  let dir: string;
  let bin: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'mp-runsh-'));
    bin = path.join(dir, 'bin');
    mkdirSync(bin);
    // records argv and the key it got, and writes one output where --output-file points
    writeFileSync(
      path.join(bin, 'model-pipeline'),
      [
        '#!/usr/bin/env bash',
        'printf "%s\\n" "$@" > "$ARGS_LOG"',
        'printf "%s" "${MP_TEST_SSH_KEY:-}" > "$ARGS_LOG.key"',
        'if [ -n "${FAIL:-}" ]; then echo "error: boom" >&2; exit 1; fi',
        'while [ $# -gt 0 ]; do if [ "$1" = --output-file ]; then printf "MP_DONE=%s\\n" "\'yes it is\'" >> "$2"; fi; shift; done',
        '',
      ].join('\n'),
    );
    chmodSync(path.join(bin, 'model-pipeline'), 0o755);
  });

  function run(params: Record<string, string>, extra: Record<string, string> = {}) {
    const log = path.join(dir, `args-${Math.random().toString(36).slice(2)}`);
    const bashEnv = `${log}.bash_env`;
    const outputs = path.join(dir, 'outputs');
    const env = baseEnv({
      PATH: `${bin}:${process.env.PATH}`,
      ARGS_LOG: log,
      BASH_ENV: bashEnv,
      MP_COMMAND: 'fake',
      MP_OPTIONS: specs.map(optionTableLine).join('\n') + '\n',
      PARAM_CLI_VERSION: 'path',
      PARAM_OUTPUTS_DIR: outputs,
      ...params,
      ...extra,
    });
    const r = bash(`bash ${JSON.stringify(RUN_SH)}`, env, dir);
    const read = (f: string) => {
      try {
        return readFileSync(f, 'utf8');
      } catch {
        return undefined;
      }
    };
    const args = read(log)?.trimEnd().split('\n');
    return {
      ...r,
      args,
      key: read(`${log}.key`),
      bashEnv: read(bashEnv),
      outputs: read(`${outputs}/fake.env`),
    };
  }

  const defaults = {
    PARAM_CONFIG_PATH: 'search-config.toml',
    PARAM_BUCKET: '',
    PARAM_INSTANCE_TYPES: 'g5.xlarge',
    PARAM_ROOT_VOLUME_GIB: '200',
    PARAM_FORCE: 'false',
    PARAM_WAIT: 'true',
    PARAM_SSH_PRIVATE_KEY: 'MP_TEST_SSH_KEY',
    PARAM_API_TOKEN: 'MODEL_PIPELINE_API_TOKEN',
  };

  it('passes no flag for a parameter left at its default', () => {
    const r = run(defaults);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.status).toBe(0);
    expect(r.args).toEqual([
      'fake',
      '--output-file',
      expect.any(String),
      '--summary-file',
      path.join(dir, 'outputs', 'fake.md'),
    ]);
  });

  it('passes changed values, booleans both ways, and writes outputs to BASH_ENV and the outputs dir', () => {
    const r = run({
      ...defaults,
      PARAM_CONFIG_PATH: 'models/a b/config.toml',
      PARAM_BUCKET: 'my-bucket',
      PARAM_INSTANCE_TYPES: 'g6.xlarge,g5.xlarge',
      PARAM_ROOT_VOLUME_GIB: '500',
      PARAM_FORCE: 'true',
      PARAM_WAIT: 'false',
    });
    expect(r.status).toBe(0);
    expect(r.args).toEqual([
      'fake',
      '--config-path=models/a b/config.toml',
      '--bucket=my-bucket',
      '--instance-types=g6.xlarge,g5.xlarge',
      '--root-volume-gib=500',
      '--force',
      '--no-wait',
      '--output-file',
      expect.any(String),
      '--summary-file',
      expect.stringMatching(/fake\.md$/),
    ]);
    expect(r.bashEnv).toBe("set -a\nMP_DONE='yes it is'\nset +a\n");
    expect(r.outputs).toContain("MP_DONE='yes it is'\n");
  });

  it('takes secrets by variable name: exported under the CLI’s own variable, never in argv or the log', () => {
    const r = run(
      { ...defaults, PARAM_SSH_PRIVATE_KEY: 'MY_DEPLOY_KEY', PARAM_API_TOKEN: 'MY_TOKEN' },
      { MY_DEPLOY_KEY: 'ssh-key-s3cret', MY_TOKEN: 'tok-s3cret' },
    );
    expect(r.status).toBe(0);
    expect(r.key).toBe('ssh-key-s3cret');
    expect(r.args?.join(' ')).not.toContain('ssh-key-s3cret');
    // an option the CLI reads from no variable can only go as a flag; the echoed command line masks it
    expect(r.args).toEqual(expect.arrayContaining(['--api-token', 'tok-s3cret']));
    expect(r.stdout + r.stderr).not.toMatch(/s3cret/);
    expect(r.stdout).toContain('--api-token ***');
  });

  it('rejects a boolean that is neither true nor false, and a bad variable name, with exit code 2', () => {
    expect(run({ ...defaults, PARAM_FORCE: 'maybe' }).status).toBe(2);
    const bad = run({ ...defaults, PARAM_SSH_PRIVATE_KEY: 'not a name' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/ssh_private_key must name an environment variable/);
  });

  it('fails the step when the CLI fails, and leaves BASH_ENV alone', () => {
    const r = run(defaults, { FAIL: '1' });
    expect(r.status).toBe(1);
    expect(r.bashEnv).toBeUndefined();
    expect(r.stderr).toContain('error: boom');
  });

  it('runs a release tarball given as cli_version with npx --package, with orb-dialect messages', () => {
    const npxDir = path.join(dir, 'npx-bin');
    mkdirSync(npxDir, { recursive: true });
    writeFileSync(
      path.join(npxDir, 'npx'),
      '#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$ARGS_LOG"\nprintf "%s" "${MODEL_PIPELINE_DIALECT:-}" > "$ARGS_LOG.key"\n',
    );
    chmodSync(path.join(npxDir, 'npx'), 0o755);
    const tgz =
      'https://github.com/org/model-pipeline-action/releases/download/v1.0.0/model-pipeline-1.0.0.tgz';
    const r = run(defaults, { PARAM_CLI_VERSION: tgz, PATH: `${npxDir}:${process.env.PATH}` });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.args?.slice(0, 5)).toEqual(['--yes', '--package', tgz, 'model-pipeline', 'fake']);
    // the CLI then names dry_run, not --dry-run, in its hints
    expect(r.key).toBe('orb');
  });

  it('says so when cli_version is path and no model-pipeline is on PATH', () => {
    const r = run(defaults, { PATH: '/usr/bin:/bin' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not on PATH/);
  });
});

/**
 * What CircleCI runs: the packed needs_model command's environment (parameters substituted) and its
 * command text, with the real CLI (built from src/) on PATH and the local backend.
 */
describe('packed needs_model + load_outputs with the real CLI on the local backend', () => {
  const orb = loadPackedOrb();
  let bin: string;

  beforeAll(() => {
    bin = buildCliBin();
  });

  function stepOf(command: string, params: Record<string, unknown>, i = 0) {
    const c = orb.commands[command];
    const step = substitute(c.steps?.[i], { ...defaultsOf(c.parameters), ...params }) as {
      run: { environment?: Record<string, unknown>; command: string };
    };
    const env = Object.fromEntries(
      Object.entries(step.run.environment ?? {}).map(([k, v]) => [k, String(v)]),
    );
    return { env, command: step.run.command };
  }

  it('exports the outputs to $BASH_ENV and the workspace, and a later job loads them', () => {
    const repo = new TempRepo();
    repo.write('search-config.toml', configToml('2.0.0')).commit('first');
    const sha = repo.head();
    const work = mkdtempSync(path.join(tmpdir(), 'mp-circle-'));
    const outputsDir = path.join(work, 'workspace', 'outputs');
    const bashEnv = path.join(work, 'bash_env');
    const step = stepOf('needs_model', { backend: 'local', cli_version: 'path', outputs_dir: outputsDir });
    expect(step.env[paramEnvName('backend')]).toBe('local');
    const circle = { CIRCLECI: 'true', CIRCLE_SHA1: sha, CIRCLE_BRANCH: 'main', BASH_ENV: bashEnv };
    const r = bash(
      step.command,
      baseEnv({ ...step.env, ...circle, PATH: `${bin}:${process.env.PATH}` }),
      repo.dir,
    );
    expect(r.stderr).not.toMatch(/^error/m);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('+ model-pipeline needs-model --backend=local');
    expect(sourced(bashEnv, 'MP_NEEDS_MODEL')).toBe('true');
    expect(sourced(bashEnv, 'MP_MODEL_VERSION')).toBe('2.0.0');
    expect(sourced(bashEnv, 'MP_MODEL_SHA')).toBe(sha.slice(0, 7));
    expect(JSON.parse(sourced(bashEnv, 'MP_MATRIX'))).toEqual([
      expect.objectContaining({ 'config-path': 'search-config.toml', 'model-version': '2.0.0' }),
    ]);
    expect(seenByChild(bashEnv, 'MP_NEEDS_MODEL')).toBe('true');
    const workspaceFile = path.join(outputsDir, 'needs-model.env');
    expect(sourced(workspaceFile, 'MP_MODEL_PREFIX')).toBe(sourced(bashEnv, 'MP_MODEL_PREFIX'));
    expect(readFileSync(bashEnv, 'utf8')).toContain(readFileSync(workspaceFile, 'utf8'));
    // under the orb the CLI leaves $BASH_ENV to run.sh: each output once, not twice
    expect(readFileSync(bashEnv, 'utf8').match(/MP_NEEDS_MODEL=/g)).toHaveLength(1);
    // CircleCI has no step summary: the Markdown summary is beside the outputs, stored as an artifact
    expect(readFileSync(path.join(outputsDir, 'needs-model.md'), 'utf8')).toMatch(/2\.0\.0/);
    expect(orb.commands.needs_model.steps?.[1]).toEqual({
      store_artifacts: { path: '<< parameters.outputs_dir >>', destination: 'model-pipeline' },
    });

    // the next job: a fresh BASH_ENV, outputs loaded from the workspace by load_outputs' run step
    const load = stepOf('load_outputs', { outputs_dir: outputsDir }, 1);
    const nextEnv = path.join(work, 'bash_env_next');
    const l = bash(load.command, baseEnv({ ...load.env, BASH_ENV: nextEnv }), work);
    expect(l.status).toBe(0);
    expect(sourced(nextEnv, 'MP_NEEDS_MODEL')).toBe('true');
    expect(sourced(nextEnv, 'MP_REASON')).toBe(sourced(bashEnv, 'MP_REASON'));
    expect(seenByChild(nextEnv, 'MP_MODEL_VERSION')).toBe('2.0.0');
  });

  it('a bad parameter fails the step with the CLI’s message and exit code 2', () => {
    const repo = new TempRepo();
    repo.write('search-config.toml', configToml('1.0.0')).commit('first');
    const work = mkdtempSync(path.join(tmpdir(), 'mp-circle-'));
    const step = stepOf('needs_model', {
      backend: 'local',
      cli_version: 'path',
      config_path: 'missing.toml',
      outputs_dir: path.join(work, 'outputs'),
    });
    const env = baseEnv({
      ...step.env,
      BASH_ENV: path.join(work, 'bash_env'),
      PATH: `${bin}:${process.env.PATH}`,
    });
    const r = bash(step.command, env, repo.dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/missing\.toml/);
  });
});
