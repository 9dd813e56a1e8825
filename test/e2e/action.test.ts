import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { motoEndpoint, newBucket, TEST_AWS_ENV } from '../helpers/aws';
import { configToml, TempRepo } from '../helpers/git-repo';

// The committed bundle, run the way the GitHub runner runs it (refresh it first with `npm run bundle`).
const ROOT = path.resolve(__dirname, '../..');
const MAIN = path.join(ROOT, 'dist/main/index.js');
const POST = path.join(ROOT, 'dist/post/index.js');
const CLI = path.join(ROOT, 'dist/cli/index.js');

/** Reads the runner's file-command format: `name<<DELIMITER\nvalue\nDELIMITER` (and plain `name=value`). */
function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc;
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i]);
      if (i >= lines.length) throw new Error(`no closing delimiter for ${name}`);
      out[name] = value.join('\n');
    } else {
      const eq = line.indexOf('=');
      if (eq < 0) throw new Error(`unreadable file-command line: ${line}`);
      out[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return out;
}

interface ActionRun {
  status: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  summary: string;
}

/** A clean environment: nothing from the machine running the tests reaches the action but PATH and HOME. */
function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir() };
}

function runAction(script: string, cwd: string, env: Record<string, string>): ActionRun {
  const files = mkdtempSync(path.join(tmpdir(), 'mp-runner-'));
  const output = path.join(files, 'output');
  const state = path.join(files, 'state');
  const summary = path.join(files, 'summary');
  for (const f of [output, state, summary]) writeFileSync(f, '');
  const r = spawnSync(process.execPath, [script], {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...baseEnv(),
      GITHUB_ACTIONS: 'true',
      GITHUB_OUTPUT: output,
      GITHUB_STATE: state,
      GITHUB_STEP_SUMMARY: summary,
      RUNNER_TEMP: files,
      ...env,
    },
  });
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    outputs: parseFileCommands(readFileSync(output, 'utf8')),
    state: parseFileCommands(readFileSync(state, 'utf8')),
    summary: readFileSync(summary, 'utf8'),
  };
}

function featureRepo(): { repo: TempRepo; main: string; head: string } {
  const repo = new TempRepo();
  repo.write('search-config.toml', configToml('1.0.0'));
  const main = repo.commit('main');
  repo.checkout('-b', 'feature');
  repo.write('search-config.toml', configToml('1.1.0'));
  return { repo, main, head: repo.commit('bump') };
}

beforeAll(() => {
  for (const f of [MAIN, POST, CLI])
    if (!existsSync(f)) throw new Error(`${f} is missing: run npm run bundle before the e2e tests`);
});

describe('the action bundle (dist/main) as the GitHub runner runs it', () => {
  it('needs-model: writes every output, the step summary and the command state', () => {
    const { repo, main, head } = featureRepo();
    const sha7 = head.slice(0, 7);
    const r = runAction(MAIN, repo.dir, {
      INPUT_COMMAND: 'needs-model',
      'INPUT_CONFIG-PATH': 'search-config.toml',
      'INPUT_LOCAL-STORE': 'store',
      GITHUB_SHA: head,
      GITHUB_REF_NAME: 'feature',
      GITHUB_REPOSITORY: 'acme/search',
      GITHUB_RUN_ID: '99',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const reason = `version changed 1.0.0 -> 1.1.0 against main (merge-base ${main.slice(0, 7)}) and no model 1.1.0-${sha7} is in the store`;
    expect(r.outputs).toEqual({
      'needs-model': 'true',
      reason,
      rule: 'version-bump',
      'model-prefix': `1.1.0-${sha7}/`,
      'model-version': '1.1.0',
      'model-sha': sha7,
      'model-uri': `file://${repo.dir}/store/1.1.0-${sha7}/`,
      matrix: JSON.stringify([
        {
          name: `1.1.0-${sha7}`,
          'config-path': 'search-config.toml',
          'model-prefix': `1.1.0-${sha7}/`,
          'model-version': '1.1.0',
          'model-sha': sha7,
        },
      ]),
      'promote-matrix': JSON.stringify([
        {
          name: `1.1.0-${sha7}`,
          'config-path': 'search-config.toml',
          'model-prefix': `1.1.0-${sha7}/`,
          'needs-model': 'true',
          rule: 'version-bump',
        },
      ]),
    });
    expect(r.state).toEqual({ command: 'needs-model' });
    expect(r.summary).toContain(`### needs-model (base main (merge-base ${main.slice(0, 7)}))`);
    expect(r.summary).toContain('| model | config | needs model | rule | reason |');
    expect(r.summary).toContain(`| 1.1.0-${sha7}/ | search-config.toml | yes | version-bump | ${reason} |`);
    expect(r.stdout).toContain(`1.1.0-${sha7}/: needs a model`);
    expect(r.stdout).not.toContain('::error::');
  });

  it('needs-model against S3 (moto), with a multi-model glob', async () => {
    const bucket = await newBucket('e2e');
    const repo = new TempRepo();
    repo.write('models/a/search-config.toml', configToml('1.0.0'));
    repo.write('models/b/search-config.toml', configToml('1.0.0'));
    repo.commit('two');
    repo.write('models/b/search-config.toml', configToml('1.0.1'));
    const head = repo.commit('bump b');
    const sha7 = head.slice(0, 7);
    const store = new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: motoEndpoint() });
    const env = {
      ...TEST_AWS_ENV,
      INPUT_COMMAND: 'needs-model',
      'INPUT_CONFIG-PATH': 'models/*/search-config.toml',
      INPUT_BUCKET: bucket,
      'INPUT_S3-ENDPOINT': motoEndpoint(),
      'INPUT_STORE-PREFIX': 'models',
      GITHUB_SHA: head,
    };
    const r = runAction(MAIN, repo.dir, env);
    // the SDK may warn about the node version on stderr; errors would show as ::error:: on stdout
    expect(r.stdout).not.toContain('::error::');
    expect(r.status).toBe(0);
    expect(r.outputs['needs-model']).toBe('true');
    expect(r.outputs.reason).toBe('1 of 2 models need building');
    expect(JSON.parse(r.outputs.matrix)).toEqual([
      {
        name: 'b',
        'config-path': 'models/b/search-config.toml',
        'model-prefix': `models/b/1.0.1-${sha7}/`,
        'model-version': '1.0.1',
        'model-sha': sha7,
      },
    ]);
    await store.put(`models/b/1.0.1-${sha7}/model.zip`, 'zip');
    await store.put(`models/b/1.0.1-${sha7}/manifest.json`, '{}');
    const again = runAction(MAIN, repo.dir, env);
    expect(again.outputs['needs-model']).toBe('false');
    expect(again.outputs.matrix).toBe('[]');
  });

  it('main step on S3 loads what needs-model uses, not fetch, assert or the STS/SSO clients (cold start)', async () => {
    const bucket = await newBucket('e2e');
    const { repo, head } = featureRepo();
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-main-loads-'));
    const hook = path.join(dir, 'hook.js');
    const loads = path.join(dir, 'loads');
    // at exit: node's built-in modules and the files the step loaded (compiling them is most of its start)
    writeFileSync(
      hook,
      `const fs = require('node:fs'); const before = new Set(process.moduleLoadList);\n` +
        `process.on('exit', () => fs.writeFileSync(${JSON.stringify(loads)}, [\n` +
        `  ...process.moduleLoadList.filter((m) => !before.has(m)),\n` +
        `  ...Object.keys(require.cache)].join('\\n')));\n`,
    );
    const r = runAction(MAIN, repo.dir, {
      ...TEST_AWS_ENV,
      NODE_OPTIONS: `--require ${hook}`,
      INPUT_COMMAND: 'needs-model',
      INPUT_BUCKET: bucket,
      'INPUT_S3-ENDPOINT': motoEndpoint(),
      GITHUB_SHA: head,
    });
    expect(r.stdout).not.toContain('::error::');
    expect(r.outputs['needs-model']).toBe('true');
    const loaded = readFileSync(loads, 'utf8').split('\n');
    // the S3 request went out, and nothing it does not need came with it
    expect(loaded).toContain('NativeModule http');
    expect(loaded.filter((m) => /undici|NativeModule assert$/.test(m))).toEqual([]);
    expect(loaded.filter((m) => /[\\/]dist[\\/]lib[\\/]vendor[\\/]/.test(m))).toEqual([]);
  });

  it.each<[string, Record<string, string>, RegExp]>([
    [
      'missing config',
      { INPUT_COMMAND: 'needs-model', 'INPUT_CONFIG-PATH': 'nope/search-config.toml' },
      /^::error::config file nope\/search-config\.toml not found \(in .*\); set the config-path input$/m,
    ],
    [
      'unknown command',
      { INPUT_COMMAND: 'fly' },
      /^::error::unknown command "fly"; expected one of: needs-model, /m,
    ],
    ['no command', {}, /^::error::no command given; expected one of: needs-model/m],
    [
      'bad environment',
      { INPUT_COMMAND: 'promote', INPUT_ENVIRONMENT: 'prod' },
      /^::error::the environment input must be one of development, staging, production; got "prod"$/m,
    ],
  ])('fails with exit 1 and one ::error:: line: %s', (_name, env, message) => {
    const { repo, head } = featureRepo();
    const r = runAction(MAIN, repo.dir, { GITHUB_SHA: head, ...env });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(message);
    expect(r.stdout.match(/::error::/g)).toHaveLength(1);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/\n\s+at /);
    expect(r.outputs).toEqual({});
  });

  it('post step: without state to clean up it does not load the bundle', () => {
    const { repo } = featureRepo();
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-post-'));
    const hook = path.join(dir, 'hook.js');
    const loads = path.join(dir, 'loads');
    // records every module the step requires, through node's own loader
    writeFileSync(
      hook,
      `const fs = require('node:fs'); const M = require('node:module'); const load = M._load;\n` +
        `M._load = function (request) { fs.appendFileSync(${JSON.stringify(loads)}, request + '\\n'); return load.apply(this, arguments); };\n`,
    );
    const post = (state: Record<string, string>) => {
      writeFileSync(loads, '');
      const r = runAction(POST, repo.dir, { NODE_OPTIONS: `--require ${hook}`, ...state });
      expect(r.status).toBe(0);
      expect(r.stdout).not.toContain('::error::');
      return readFileSync(loads, 'utf8')
        .split('\n')
        .filter((l) => /lib[\\/]index\.js$/.test(l));
    };
    expect(post({ STATE_command: 'train' })).toEqual([]);
    expect(post({})).toEqual([]);
    // train saved an instance: the cleanup runs (the local backend has no such process: nothing to stop)
    expect(
      post({ STATE_command: 'train', 'STATE_instance-id': 'local-999999', INPUT_BACKEND: 'local' }),
    ).toEqual(['../lib/index.js']);
  });

  it('post step: runs from the saved command state and exits 0', () => {
    const { repo } = featureRepo();
    for (const command of ['needs-model', '']) {
      const r = runAction(POST, repo.dir, { STATE_command: command });
      expect(r.stdout).not.toContain('::error::');
      expect(r.status).toBe(0);
    }
  });
});

describe('the CLI bundle (dist/cli)', () => {
  it('needs-model --json --local prints the outputs as JSON', () => {
    const { repo, head } = featureRepo();
    const sha7 = head.slice(0, 7);
    const r = spawnSync(process.execPath, [CLI, 'needs-model', '--json', '--local'], {
      cwd: repo.dir,
      encoding: 'utf8',
      timeout: 60_000,
      env: baseEnv(),
    });
    expect(r.status).toBe(0);
    const parsed = JSON.parse(r.stdout) as { command: string; outputs: Record<string, unknown> };
    expect(parsed.command).toBe('needs-model');
    // --json is typed; the action's outputs (above) stay strings
    expect(parsed.outputs).toMatchObject({
      'needs-model': true,
      'model-prefix': `1.1.0-${sha7}/`,
      'model-version': '1.1.0',
      'model-sha': sha7,
      'model-uri': `file://${repo.dir}/.model-store/1.1.0-${sha7}/`,
    });
  });

  it("names the action's inputs in hints and errors (dry-run: false, the config-path input), not CLI flags", () => {
    const { repo } = featureRepo();
    const rotate = runAction(MAIN, repo.dir, { INPUT_COMMAND: 'rotate', INPUT_BACKEND: 'local' });
    expect(rotate.status).toBe(0);
    expect(rotate.stdout + rotate.summary).toMatch(/run again with dry-run: false/);
    expect(rotate.stdout + rotate.stderr).not.toMatch(/--no-dry-run|--dry-run/);
    const missing = runAction(MAIN, repo.dir, {
      INPUT_COMMAND: 'needs-model',
      INPUT_BACKEND: 'local',
      'INPUT_CONFIG-PATH': 'missing.toml',
    });
    expect(missing.status).not.toBe(0);
    expect(missing.stdout).toMatch(
      /^::error::config file missing\.toml not found .*; set the config-path input$/m,
    );
  });

  it('warns about an input the command does not read (config-path on alias), and still runs', () => {
    const { repo } = featureRepo();
    const r = runAction(MAIN, repo.dir, {
      INPUT_COMMAND: 'alias',
      INPUT_BACKEND: 'local',
      'INPUT_CONFIG-PATH': 'search-config.toml',
    });
    expect(r.stdout).not.toMatch(/::error::/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^::warning::alias does not use the setting\(s\) config-path; ignored$/m);
  });

  it('exits 2 with one error line for bad input', () => {
    const { repo } = featureRepo();
    const r = spawnSync(process.execPath, [CLI, 'needs-model', '--local', '--config', 'missing.toml'], {
      cwd: repo.dir,
      encoding: 'utf8',
      timeout: 60_000,
      env: baseEnv(),
    });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`error: config file missing.toml not found (in ${repo.dir}); set --config-path\n`);
  });
});
