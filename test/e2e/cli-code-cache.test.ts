import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { configToml, TempRepo } from '../helpers/git-repo';

const CLI = path.resolve(__dirname, '../../dist/cli/index.js');

/** Inside GitHub Actions the CLI would also write the job's own $GITHUB_OUTPUT and step summary. */
function withoutGithub(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['GITHUB_ACTIONS', 'GITHUB_OUTPUT', 'GITHUB_STEP_SUMMARY']) delete env[k];
  return env;
}

function run(cwd: string, env: Record<string, string>): unknown {
  const out = execFileSync(process.execPath, [CLI, 'needs-model', '--local', '--json'], {
    cwd,
    env: { ...withoutGithub(), ...env },
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

describe('the CLI entry keeps a V8 code cache of the bundle', () => {
  const repo = new TempRepo();
  repo.write('search-config.toml', configToml('1.0.0'));
  repo.commit('model');
  repo.write('search-config.toml', configToml('1.1.0'));
  repo.commit('bump');

  it('writes the cache on the first run and gives the same answer from it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-code-cache-'));
    const first = run(repo.dir, { MODEL_PIPELINE_CODE_CACHE_DIR: dir });
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^bundle-${process.version}-.*\\.v8cache$`));
    const cached = readFileSync(path.join(dir, files[0]));
    expect(cached.length).toBeGreaterThan(1000);
    const second = run(repo.dir, { MODEL_PIPELINE_CODE_CACHE_DIR: dir });
    expect(second).toEqual(first);
    expect((first as { outputs: Record<string, unknown> }).outputs['needs-model']).toBe(true);
    // a cache that V8 accepted is not rewritten
    expect(readFileSync(path.join(dir, files[0])).equals(cached)).toBe(true);
  });

  it('a corrupt cache is rejected and replaced, the answer unchanged', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-code-cache-'));
    const plain = run(repo.dir, { MODEL_PIPELINE_NO_CODE_CACHE: '1', MODEL_PIPELINE_CODE_CACHE_DIR: dir });
    expect(readdirSync(dir)).toEqual([]);
    run(repo.dir, { MODEL_PIPELINE_CODE_CACHE_DIR: dir });
    const [file] = readdirSync(dir);
    writeFileSync(path.join(dir, file), 'not a code cache');
    expect(run(repo.dir, { MODEL_PIPELINE_CODE_CACHE_DIR: dir })).toEqual(plain);
    expect(readFileSync(path.join(dir, file)).toString()).not.toBe('not a code cache');
  });

  it('an unwritable cache folder does not stop the CLI', () => {
    const parent = mkdtempSync(path.join(tmpdir(), 'mp-code-cache-'));
    writeFileSync(path.join(parent, 'file'), 'x');
    const out = run(repo.dir, { MODEL_PIPELINE_CODE_CACHE_DIR: path.join(parent, 'file', 'sub') });
    expect((out as { outputs: Record<string, unknown> }).outputs['needs-model']).toBe(true);
  });
});
