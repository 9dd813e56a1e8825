import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { ObjectStore } from '../../src/core/ports';
import { configToml, TempRepo } from './git-repo';

/*
 * Shared by test/e2e/lifecycle-*.test.ts. The release loop a team lives in, through the bundled CLI (dist/,
 * `npm run bundle` first): branch bump -> train -> promote development -> merge (--no-ff, squash, rebase) -> staging -> production with no second
 * training -> the next generation trains and is compared against production -> rollback (revert, and a
 * version-only lowering) -> demote -> alias -> rotate -> fetch-model per environment. On the local backend
 * and on S3 (moto); one generation also through dist/main/index.js as the GitHub runner calls it.
 */

const ROOT = path.resolve(__dirname, '../..');
export const CLI = path.join(ROOT, 'dist/cli/index.js');
export const MAIN = path.join(ROOT, 'dist/main/index.js');

const TRAIN_SH = [
  'set -eu',
  'v=$(sed -n \'s/^version = "\\(.*\\)"/\\1/p\' "$MODEL_PIPELINE_CONFIG")',
  'echo "weights $v" > weights.txt',
  'rm -f model.zip && zip -q -X model.zip weights.txt',
  'echo "{\\"top1\\": 0.9, \\"loss\\": 0.3}" > metrics.json',
  '',
].join('\n');

export interface Backend {
  name: string;
  args: string[];
  /** Extra flags of train (on S3: EC2 on moto, SSH to the test's sshd). */
  trainArgs?: string[];
  env: Record<string, string>;
  store(repoDir: string): ObjectStore;
}

export function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir() };
}

export class Loop {
  readonly repo = new TempRepo('mp-life-');
  readonly store: ObjectStore;
  trainings = 0;

  constructor(readonly b: Backend) {
    this.store = b.store(this.repo.dir);
    this.repo.write('.gitignore', '.model-store/\nmodel.zip\nmetrics.json\nweights.txt\nout-*/\ngot-*/\n');
    this.repo.write('train.sh', TRAIN_SH);
    this.repo.write(
      'thresholds.json',
      JSON.stringify({ metrics: { top1: { better: 'higher', fail: 0.05 } } }),
    );
  }

  /**
   * Runs the CLI bundle with --json; returns the outputs as the text the action and `MP_*` lines give
   * (--json types them: booleans, numbers, lists), or throws with its stderr.
   */
  mp(command: string, ...args: string[]): Record<string, string> {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [CLI, command, '--json', ...this.b.args, ...args], {
      cwd: this.repo.dir,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...baseEnv(), ...this.b.env },
    });
    if (process.env.LIFECYCLE_TIMING)
      process.stderr.write(`${this.b.name} ${command}: ${Date.now() - t0} ms\n`);
    if (r.status !== 0)
      throw new Error(`${command} ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
    const outputs = (JSON.parse(r.stdout) as { outputs: Record<string, unknown> }).outputs;
    return Object.fromEntries(
      Object.entries(outputs).map(([k, v]) => [
        k,
        typeof v === 'string' ? v : v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v),
      ]),
    );
  }

  /** Bad input: exit 2, one line, nothing written. */
  mpFails(command: string, ...args: string[]): { status: number | null; stderr: string } {
    const r = spawnSync(process.execPath, [CLI, command, ...this.b.args, ...args], {
      cwd: this.repo.dir,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...baseEnv(), ...this.b.env },
    });
    return { status: r.status, stderr: r.stderr };
  }

  train(): Record<string, string> {
    this.trainings++;
    return this.mp(
      'train',
      '--data-key',
      'none',
      '--train-command',
      'sh train.sh',
      '--thresholds-file',
      'thresholds.json',
      ...(this.b.trainArgs ?? []),
    );
  }

  promote(prefix: string, environment: string): Record<string, string> {
    return this.mp('promote', '--model-prefix', prefix, '--environment', environment);
  }

  async modelFolders(): Promise<string[]> {
    const folders = new Set<string>();
    for await (const o of this.store.list('')) {
      const m = /^(\d+\.\d+\.\d+-[0-9a-f]{7})\//.exec(o.key);
      if (m) folders.add(m[1] + '/');
    }
    return [...folders].sort();
  }

  async text(key: string): Promise<string> {
    return (await this.store.get(key))!.body.toString('utf8');
  }
}

const MERGES: Record<string, (repo: TempRepo, branch: string) => void> = {
  '--no-ff': (r, br) => r.git('merge', '-q', '--no-ff', '-m', `merge ${br}`, br),
  squash: (r, br) => {
    r.git('merge', '-q', '--squash', br);
    r.git('commit', '-q', '-m', `squash ${br}`);
  },
  rebase: (r, br) => {
    r.git('checkout', '-q', br);
    r.git('rebase', '-q', 'main');
    r.git('checkout', '-q', 'main');
    r.git('merge', '-q', '--ff-only', br);
  },
};

/** One generation: branch bump, train (compared with production), development, merge, staging, production. */
async function generation(
  loop: Loop,
  version: string,
  how: keyof typeof MERGES,
  production: string,
): Promise<string> {
  const { repo } = loop;
  const branch = `model-${version}`;
  repo.checkout('-b', branch);
  repo.write('search-config.toml', configToml(version));
  const head = repo.commit(`bump model to ${version}`);
  const nm = loop.mp('needs-model');
  expect(nm).toMatchObject({ 'needs-model': 'true', rule: 'version-bump' });
  const folder = `${version}-${head.slice(0, 7)}/`;
  expect(nm['model-prefix']).toBe(folder);
  const trained = loop.train();
  expect(trained['model-prefix']).toBe(folder);
  expect(trained['benchmark-passed']).toBe('true');
  // compared against the production model, by the metrics its manifest records
  const xml = await loop.text(folder + 'benchmark_results.xml');
  expect(xml).toContain(production);
  expect(xml).toMatch(/name="current" value="0\.9"/);
  loop.promote(folder, 'development');

  repo.checkout('main');
  repo.write('NOTES.md', `main moved on before ${version}\n`).commit(`notes before ${version}`);
  MERGES[how](repo, branch);
  repo.git('branch', '-D', branch);
  expect(repo.head()).not.toBe(head);
  const before = await loop.modelFolders();
  // on main: the model reviewed on the branch is the model of this commit; nothing trains
  const onMain = loop.mp('needs-model');
  expect(onMain).toMatchObject({
    'needs-model': 'false',
    'model-prefix': folder,
    'model-sha': head.slice(0, 7),
    rule: how === '--no-ff' ? 'ancestor' : 'newest',
  });
  expect(onMain['model-uri']).toBe(loop.store.uri(folder));
  expect(JSON.parse(onMain.matrix)).toEqual([]);
  if (how === '--no-ff') {
    // train on main refuses: the branch's folder is already the model of this commit (once is enough)
    expect(() => loop.train()).toThrow(
      new RegExp(`${folder.replace(/\./g, '\\.')} is already the model of this commit`),
    );
    loop.trainings--;
  }
  // promote without model-prefix resolves the same folder
  expect(loop.mp('promote', '--environment', 'staging')['model-prefix']).toBe(folder);
  expect(loop.promote(onMain['model-prefix'], 'production')).toMatchObject({
    'model-prefix': folder,
    'previous-prefix': production,
    changed: 'true',
  });
  expect(await loop.modelFolders()).toEqual(before);
  expect(
    loop.mp('fetch-model', '--environment', 'development', '--dest', `got-dev-${version}`)['model-prefix'],
  ).toBe(folder);
  expect(loop.mp('describe')['model-prefix']).toBe(folder);
  return folder;
}

export async function lifecycle(b: Backend): Promise<void> {
  const loop = new Loop(b);
  const { repo } = loop;
  // generation 1, the first model of the repository, trained on main
  repo.write('search-config.toml', configToml('1.0.0'));
  const first = repo.commit('model 1.0.0');
  expect(loop.mp('needs-model')).toMatchObject({ 'needs-model': 'true', rule: 'new-model' });
  const g1 = loop.train()['model-prefix'];
  expect(g1).toBe(`1.0.0-${first.slice(0, 7)}/`);
  for (const env of ['development', 'staging', 'production']) loop.promote(g1, env);

  const g2 = await generation(loop, '1.1.0', '--no-ff', g1);
  const g3 = await generation(loop, '1.2.0', 'squash', g2);
  const g4 = await generation(loop, '1.3.0', 'rebase', g3);
  expect(loop.trainings).toBe(4);
  expect(await loop.modelFolders()).toEqual([g1, g2, g3, g4].sort());

  // rollback by revert: the config is byte-identical to generation 3's, so its model serves
  repo.git('revert', '--no-edit', 'HEAD');
  const reverted = loop.mp('needs-model');
  expect(reverted).toMatchObject({ 'needs-model': 'false', 'model-prefix': g3, rule: 'newest' });
  expect(loop.promote(reverted['model-prefix'], 'production')).toMatchObject({ 'model-prefix': g3 });

  // a version-only lowering that differs from every stored config builds one (defect 3) ...
  repo.write('search-config.toml', configToml('1.1.0', 'lr = 0.2'));
  expect(loop.mp('needs-model')).toMatchObject({ 'needs-model': 'true', rule: 'rollback' });
  // ... and one identical to generation 1's config reuses it
  repo.write('search-config.toml', configToml('1.0.0'));
  repo.commit('back to 1.0.0');
  const lowered = loop.mp('needs-model');
  expect(lowered).toMatchObject({ 'needs-model': 'false', 'model-prefix': g1, rule: 'ancestor' });
  loop.promote(g1, 'production');
  expect(loop.mp('status', '--environment', 'production')['model-prefix']).toBe(g1);

  // demote steps production back to the model before
  expect(loop.mp('demote', '--environment', 'production')).toMatchObject({
    'model-prefix': g3,
    'previous-prefix': g1,
  });

  // two abandoned branches: one aliased (kept by rotate), one not (deleted)
  const abandoned: string[] = [];
  for (const v of ['8.0.0', '9.0.0']) {
    repo.checkout('-b', `try-${v}`);
    repo.write('search-config.toml', configToml(v));
    repo.commit(`try ${v}`);
    abandoned.push(loop.train()['model-prefix']);
    repo.checkout('main');
    repo.git('branch', '-D', `try-${v}`);
  }
  loop.mp('alias', '--alias', 'golden', '--model-prefix', abandoned[1], '--reason', 'baseline');
  const rotated = loop.mp('rotate', '--grace-days', '0', '--keep-per-version', '0', '--no-dry-run');
  expect(JSON.parse(rotated['deleted-prefixes'])).toEqual([abandoned[0]]);
  expect(await loop.modelFolders()).toEqual([g1, g2, g3, g4, abandoned[1]].sort());
  expect(loop.mp('download', '--alias', 'golden', '--dest', 'got-golden')['model-prefix']).toBe(abandoned[1]);

  // every environment fetches its own model
  const fetched = (env: string) =>
    loop.mp('fetch-model', '--environment', env, '--dest', `got-${env}`)['model-prefix'];
  expect(fetched('development')).toBe(g1);
  expect(fetched('staging')).toBe(g4);
  expect(fetched('production')).toBe(g3);
  expect(readFileSync(path.join(repo.dir, 'got-production', 'weights.txt'), 'utf8')).toBe('weights 1.2.0\n');

  // status: the manifest's verdict, labelled sizes, this commit's model
  const status = JSON.parse(loop.mp('status').models) as {
    prefix: string;
    benchmark: string;
    thisCommit?: boolean;
  }[];
  expect(status.find((r) => r.prefix === g2)!.benchmark).toMatch(/^passed: top1=0\.9/);
  expect(status.find((r) => r.thisCommit)?.prefix).toBe(g1);

  // bad input: one line, exit 2, nothing written
  const before = await loop.modelFolders();
  const bad = loop.mpFails('promote', '--environment', 'prod', '--model-prefix', g1);
  expect(bad.status).toBe(2);
  expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  expect(await loop.modelFolders()).toEqual(before);
  expect(loop.trainings).toBe(6);
}
