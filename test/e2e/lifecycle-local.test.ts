import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FsObjectStore } from '../../src/adapters/local/fs-store';
import { configToml } from '../helpers/git-repo';
import { baseEnv, CLI, lifecycle, Loop, MAIN } from '../helpers/lifecycle';

// The release loop through the bundled CLI (test/helpers/lifecycle.ts) on the local backend, and one
// generation through dist/main/index.js as the GitHub runner calls it. The S3 run: lifecycle-s3.test.ts.

// six trainings and ~60 CLI runs: about 20 s (local) and 90 s (S3 + EC2 polling) on an idle machine
jest.setTimeout(300_000);

beforeAll(() => {
  for (const f of [CLI, MAIN])
    if (!existsSync(f)) throw new Error(`${f} is missing: run npm run bundle before the e2e tests`);
});

describe('the release loop holds model after model (dist/cli)', () => {
  it('on the local backend', async () => {
    await lifecycle({
      name: 'local',
      args: ['--local'],
      env: {},
      store: (dir) => new FsObjectStore(path.join(dir, '.model-store')),
    });
  });
});

/** The runner's file-command format: `name<<DELIMITER\nvalue\nDELIMITER`. */
function readOutputs(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^=<]+)<<(.+)$/.exec(lines[i]);
    if (!m) continue;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]);
    out[m[1]] = value.join('\n');
  }
  return out;
}

describe('one generation through dist/main/index.js as the runner calls it', () => {
  it('branch trains, main promotes the reviewed model without training', () => {
    const loop = new Loop({
      name: 'local',
      args: [],
      env: {},
      store: (d) => new FsObjectStore(path.join(d, '.model-store')),
    });
    const { repo } = loop;
    repo.write('search-config.toml', configToml('1.0.0')).commit('model 1.0.0');
    repo.checkout('-b', 'feature');
    repo.write('search-config.toml', configToml('1.1.0'));
    const head = repo.commit('bump');
    const action = (inputs: Record<string, string>, sha: string): Record<string, string> => {
      const files = mkdtempSync(path.join(tmpdir(), 'mp-life-runner-'));
      const output = path.join(files, 'output');
      for (const f of ['output', 'state', 'summary']) writeFileSync(path.join(files, f), '');
      const env: Record<string, string> = {
        ...baseEnv(),
        GITHUB_ACTIONS: 'true',
        GITHUB_OUTPUT: output,
        GITHUB_STATE: path.join(files, 'state'),
        GITHUB_STEP_SUMMARY: path.join(files, 'summary'),
        RUNNER_TEMP: files,
        GITHUB_SHA: sha,
        INPUT_BACKEND: 'local',
      };
      for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
      const r = spawnSync(process.execPath, [MAIN], {
        cwd: repo.dir,
        encoding: 'utf8',
        timeout: 60_000,
        env,
      });
      expect(r.stdout).not.toContain('::error::');
      expect(r.status).toBe(0);
      return readOutputs(output);
    };
    const folder = `1.1.0-${head.slice(0, 7)}/`;
    expect(action({ command: 'needs-model' }, head)).toMatchObject({
      'needs-model': 'true',
      'model-prefix': folder,
    });
    expect(
      action({ command: 'train', 'data-key': 'none', 'train-command': 'sh train.sh' }, head)['model-prefix'],
    ).toBe(folder);
    action({ command: 'promote', environment: 'development', 'model-prefix': folder }, head);
    repo.checkout('main');
    repo.git('merge', '-q', '--no-ff', '-m', 'merge feature', 'feature');
    const merge = repo.head();
    const nm = action({ command: 'needs-model' }, merge);
    expect(nm).toMatchObject({ 'needs-model': 'false', 'model-prefix': folder, rule: 'ancestor' });
    expect(
      action({ command: 'promote', environment: 'staging', 'model-prefix': nm['model-prefix'] }, merge),
    ).toMatchObject({
      'model-prefix': folder,
      changed: 'true',
    });
  });
});
