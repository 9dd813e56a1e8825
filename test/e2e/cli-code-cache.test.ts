import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import Module from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { configToml, TempRepo } from '../helpers/git-repo';

const CLI = path.resolve(__dirname, '../../dist/cli/index.js');
const BUNDLE = path.resolve(__dirname, '../../dist/lib/index.js');

/**
 * The audit's attack on the old entry, which loaded `<cache>/model-pipeline/bundle-<node>-<arch>-<size>-<mtime>
 * .v8cache` into vm.Script: V8 checks only the source's length, so a cache compiled from other code of the
 * same length ran that code. Whoever could write the cache folder (a restored CI cache) ran code with the
 * job's credentials. The entry now runs no cache at all.
 */
/** Inside GitHub Actions the CLI would also write the job's own $GITHUB_OUTPUT and step summary. */
function withoutGithub(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['GITHUB_ACTIONS', 'GITHUB_OUTPUT', 'GITHUB_STEP_SUMMARY']) delete env[k];
  return env;
}

describe('the CLI entry runs no code cache it did not make and verify', () => {
  const repo = new TempRepo();
  repo.write('search-config.toml', configToml('1.0.0'));
  repo.commit('model');
  repo.write('search-config.toml', configToml('1.1.0'));
  repo.commit('bump');

  const run = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, [CLI, 'needs-model', '--local', '--json'], {
      cwd: repo.dir,
      env: { ...withoutGithub(), ...env },
      encoding: 'utf8',
    });
    return { code: r.status, stderr: r.stderr, out: r.stdout };
  };

  it('a planted cache compiled from other code of the same length is not executed', () => {
    const home = mkdtempSync(path.join(tmpdir(), 'mp-cache-home-'));
    const pwned = path.join(home, 'pwned');
    const source = readFileSync(BUNDLE, 'utf8');
    const payload = `require('fs').writeFileSync(${JSON.stringify(pwned)}, 'ran');module.exports={runCliProcess(){}};`;
    const evil = payload + ' '.repeat(source.length - payload.length);
    expect(evil.length).toBe(source.length);
    const cachedData = new vm.Script(Module.wrap(evil), { filename: BUNDLE }).createCachedData();
    const st = statSync(BUNDLE);
    const key = `${process.version}-${process.arch}-${st.size}-${Math.trunc(st.mtimeMs)}`;
    for (const dir of [
      path.join(home, '.cache', 'model-pipeline'),
      path.join(home, 'xdg', 'model-pipeline'),
    ]) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, `bundle-${key}.v8cache`), cachedData);
    }
    const out = run({
      HOME: home,
      XDG_CACHE_HOME: path.join(home, 'xdg'),
      MODEL_PIPELINE_CODE_CACHE_DIR: path.join(home, 'xdg', 'model-pipeline'),
    });
    expect(existsSync(pwned)).toBe(false);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.out).outputs['needs-model']).toBe(true);
  });

  it('writes no cache anywhere in the home folder', () => {
    const home = mkdtempSync(path.join(tmpdir(), 'mp-cache-home-'));
    run({ HOME: home, XDG_CACHE_HOME: path.join(home, 'xdg') });
    expect(readdirSync(home)).toEqual([]);
  });
});
