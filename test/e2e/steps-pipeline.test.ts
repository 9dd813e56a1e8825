import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseManifest, type Manifest } from '../../src/core/manifest';
import { TempRepo } from '../helpers/git-repo';

// Step pipelines through the bundled CLI on the local backend (refresh dist/ first with `npm run bundle`).
const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli/index.js');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function mp(cwd: string, ...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? tmpdir(),
      MODEL_PIPELINE_NO_CODE_CACHE: '1',
    },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sha = (c: string): string => c.repeat(40);

function modelFolders(repo: string, scope = ''): string[] {
  const dir = path.join(repo, '.model-store', scope);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => /^\d+\.\d+\.\d+-[0-9a-f]{7}$/.test(n));
}

function stepCaches(repo: string): string[] {
  const dir = path.join(repo, '.model-store', '_steps');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

function manifestOf(repo: string, folder: string): Manifest {
  const file = path.join(repo, '.model-store', folder, 'manifest.json');
  return parseManifest(readFileSync(file, 'utf8'), file);
}

/** a -> b -> c through files; each step notes that it ran; b fails while the flag file exists. */
function chainRepo(): { repo: TempRepo; log: string; flag: string; ran: () => string[] } {
  const outside = mkdtempSync(path.join(tmpdir(), 'mp-steps-outside-'));
  const log = path.join(outside, 'ran.log');
  const flag = path.join(outside, 'fail-b');
  const repo = new TempRepo('mp-steps-');
  repo.write('data.txt', 'abc\n');
  repo.write(
    'steps.toml',
    `version = "1.0.0"

[steps.a]
command = "echo a >> ${log} && mkdir -p o && cat data.txt > o/a.txt"
inputs = ["data.txt"]
outputs = ["o/a.txt"]

[steps.b]
command = "echo b >> ${log} && test ! -e ${flag} && tr a-z A-Z < o/a.txt > o/b.txt"
inputs = ["o/a.txt"]
outputs = ["o/b.txt"]

[steps.c]
command = "echo c >> ${log} && cp o/b.txt model.zip"
inputs = ["o/b.txt"]
outputs = ["model.zip"]
`,
  );
  repo.commit('pipeline');
  const ran = (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
  return { repo, log, flag, ran };
}

const TRAIN = ['train', '--local', '--config', 'steps.toml', '--data-key', 'none'];

describe('step pipelines through the CLI bundle (local backend)', () => {
  it('runs in order; a failing middle step writes no model and a rerun resumes at it', () => {
    const { repo, flag, ran } = chainRepo();
    writeFileSync(flag, '');
    const failed = mp(repo.dir, ...TRAIN);
    expect(failed.status).toBe(1);
    expect(ran()).toEqual(['a', 'b']);
    expect(failed.stderr).toMatch(
      /error: step b \(".*"\) failed with exit code 1 after \S+; see its output above\. Not run: c\. No model was written; a rerun resumes after the 1 finished step\(s\), whose outputs are cached/,
    );
    expect(failed.stderr).toMatch(/^c\s+skipped\s+-/m);
    expect(modelFolders(repo.dir)).toEqual([]);
    expect(stepCaches(repo.dir)).toHaveLength(1);

    rmSync(flag);
    const resumed = mp(repo.dir, ...TRAIN);
    expect(resumed.stderr).toContain('step a: cache hit');
    expect(resumed.status).toBe(0);
    // only the failed step and the one after it ran again
    expect(ran()).toEqual(['a', 'b', 'b', 'c']);
    const [folder] = modelFolders(repo.dir);
    expect(readFileSync(path.join(repo.dir, '.model-store', folder, 'model.zip'), 'utf8')).toBe('ABC\n');
    const m = manifestOf(repo.dir, folder);
    expect(m.steps!.map((s) => [s.name, s.status, s.cacheHit])).toEqual([
      ['a', 'cached', true],
      ['b', 'ran', false],
      ['c', 'ran', false],
    ]);
    expect(stepCaches(repo.dir).sort()).toEqual(m.steps!.map((s) => s.key).sort());

    // describe shows the steps of the model's lineage
    const described = mp(
      repo.dir,
      'describe',
      '--local',
      '--config',
      'steps.toml',
      '--model-prefix',
      folder + '/',
    );
    expect(described.status).toBe(0);
    expect(described.stdout).toMatch(new RegExp(`^a\\s+cached\\s+0s\\s+o/a.txt\\s+${m.steps![0].key}$`, 'm'));
    expect(described.stdout).toMatch(/^c\s+ran\s+\S+\s+model\.zip\s+[0-9a-f]{64}$/m);
  });

  it('an unchanged rerun restores every step; one changed input byte runs it and what follows; no-cache runs all', () => {
    const { repo, ran } = chainRepo();
    expect(mp(repo.dir, ...TRAIN).status).toBe(0);
    expect(ran()).toEqual(['a', 'b', 'c']);

    const again = mp(repo.dir, ...TRAIN, '--force', '--sha', sha('1'));
    expect(again.status).toBe(0);
    expect(ran()).toEqual(['a', 'b', 'c']);
    expect(again.stderr.match(/cache hit/g)).toHaveLength(3);
    expect(manifestOf(repo.dir, '1.0.0-1111111').steps!.every((s) => s.cacheHit)).toBe(true);
    const keys = manifestOf(repo.dir, '1.0.0-1111111').steps!.map((s) => s.key);

    repo.write('data.txt', 'abd\n');
    const changed = mp(repo.dir, ...TRAIN, '--force', '--sha', sha('2'));
    expect(changed.status).toBe(0);
    expect(ran()).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
    const m = manifestOf(repo.dir, '1.0.0-2222222');
    expect(m.steps!.map((s) => s.cacheHit)).toEqual([false, false, false]);
    expect(m.steps!.map((s) => s.key).filter((k) => keys.includes(k))).toEqual([]);
    expect(readFileSync(path.join(repo.dir, '.model-store/1.0.0-2222222/model.zip'), 'utf8')).toBe('ABD\n');

    const forced = mp(repo.dir, ...TRAIN, '--force', '--sha', sha('3'), '--no-cache');
    expect(forced.status).toBe(0);
    expect(ran()).toHaveLength(9);
    expect(manifestOf(repo.dir, '1.0.0-3333333').steps!.map((s) => s.key)).toEqual(
      m.steps!.map((s) => s.key),
    );
  });

  it('runs independent steps at the same time only when asked', () => {
    const outside = mkdtempSync(path.join(tmpdir(), 'mp-steps-outside-'));
    const log = path.join(outside, 'ran.log');
    const repo = new TempRepo('mp-steps-');
    const slow = (n: string): string =>
      `[steps.${n}]\ncommand = "echo start ${n} >> ${log}; sleep 1; echo end ${n} >> ${log}"\n`;
    repo.write(
      'steps.toml',
      `version = "1.0.0"\n${slow('p1')}${slow('p2')}[steps.join]\nneeds = ["p1", "p2"]\ncommand = "echo join >> ${log} && echo m > model.zip"\noutputs = ["model.zip"]\n`,
    );
    repo.commit('parallel');
    const lines = (): string[] => readFileSync(log, 'utf8').trim().split('\n');

    const serial = mp(repo.dir, ...TRAIN);
    expect(serial.status).toBe(0);
    expect(serial.stderr).toContain('running 3 step(s) in 2 level(s): p1 + p2 -> join');
    expect(lines()).toEqual(['start p1', 'end p1', 'start p2', 'end p2', 'join']);

    rmSync(log);
    const parallel = mp(
      repo.dir,
      ...TRAIN,
      '--force',
      '--sha',
      sha('1'),
      '--no-cache',
      '--parallel-steps',
      '2',
    );
    expect(parallel.status).toBe(0);
    const l = lines();
    expect(l.slice(0, 2).sort()).toEqual(['start p1', 'start p2']);
    expect(l[4]).toBe('join');
    // each step's output still comes out as one group
    expect(parallel.stderr).toMatch(/== step p1 \(no-cache\)\n\$ echo start p1/);
  });

  it('a failing validate step writes no model; its JUnit is the report', () => {
    const repo = new TempRepo('mp-steps-');
    repo.write(
      'steps.toml',
      `version = "1.0.0"
[steps.build]
command = "echo m > model.zip"
outputs = ["model.zip"]
[steps.check]
command = "mkdir -p reports && printf '<testsuite name=\\"regression\\" tests=\\"2\\" failures=\\"1\\"><testcase name=\\"t1\\"/><testcase name=\\"t2\\"><failure message=\\"worse\\"/></testcase></testsuite>' > reports/j.xml && exit 3"
inputs = ["model.zip"]
validate = true
junit = "reports/j.xml"
`,
    );
    repo.commit('gate');
    const r = mp(repo.dir, ...TRAIN, '--report-dir', 'out-reports');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/error: validate step check \(".*"\) failed with exit code 3/);
    expect(modelFolders(repo.dir)).toEqual([]);
    const xml = readFileSync(path.join(repo.dir, 'out-reports/benchmark_results.xml'), 'utf8');
    expect(xml).toContain('<testsuites name="model-pipeline" tests="2" failures="1" errors="0">');
    expect(xml).toContain('<failure message="worse"/>');
  });

  it('refuses a bad graph with exit 2 and one line before anything runs', () => {
    const repo = new TempRepo('mp-steps-');
    repo.write(
      'steps.toml',
      'version = "1.0.0"\n[steps.a]\ncommand = "touch ran"\nneeds = ["b"]\n[steps.b]\ncommand = "touch ran"\nneeds = ["a"]\n',
    );
    repo.commit('cycle');
    const r = mp(repo.dir, ...TRAIN);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: steps\.toml: steps: steps form a cycle: (a -> b -> a|b -> a -> b)\n$/);
    expect(existsSync(path.join(repo.dir, '.model-store'))).toBe(false);

    repo.write('steps.toml', 'version = "1.0.0"\n[steps.a]\ncommand = "x"\nneeds = ["prep"]\n');
    const unknown = mp(repo.dir, ...TRAIN);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe(
      'error: steps.toml: steps: step "a": needs "prep", which is not a step (steps: a)\n',
    );

    repo.write(
      'steps.toml',
      'version = "1.0.0"\n[steps.a]\ncommand = "x"\noutputs = ["m.zip"]\n[steps.b]\ncommand = "y"\noutputs = ["m.zip"]\n',
    );
    const twice = mp(repo.dir, ...TRAIN);
    expect(twice.status).toBe(2);
    expect(twice.stderr).toBe(
      'error: steps.toml: steps: steps "a" and "b" both write "m.zip": give each output one step\n',
    );
  });

  it('the demo repo: prepare -> train -> validate with the JUnit merged into benchmark_results.xml', () => {
    const repo = new TempRepo('mp-steps-demo-');
    cpSync(path.join(ROOT, 'examples/demo-repo'), repo.dir, { recursive: true });
    repo.commit('demo');
    const up = path.join(repo.dir, '.model-store');
    mkdirSync(up);
    const data = spawnSync('python3', [
      '-c',
      'import zipfile,sys; z = zipfile.ZipFile(sys.argv[1], "w"); z.writestr("data.csv", "Query,Doc\\nA,B\\n"); z.close()',
      path.join(up, 'raw_source_data.zip'),
    ]);
    expect(data.status).toBe(0);
    const r = mp(repo.dir, 'train', '--local', '--config', 'pipeline-config.toml', '--output-dir', 'out');
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('running 3 step(s) in 3 level(s): prepare -> train -> validate');
    const [folder] = modelFolders(repo.dir, 'pipeline');
    const m = manifestOf(repo.dir, `pipeline/${folder}`);
    expect(m.steps!.map((s) => s.name)).toEqual(['prepare', 'train', 'validate']);
    expect(m.benchmark).toEqual({ passed: true, file: 'metrics.json', report: 'benchmark_results.xml' });
    const xml = readFileSync(path.join(up, 'pipeline', folder, 'benchmark_results.xml'), 'utf8');
    expect(xml).toContain('<testsuite name="validate" tests="1" failures="0" errors="0">');
    expect(xml).toMatch(/<testsuite name="benchmark pipeline\//);
  });

  it('the compile example: download -> compile -> validate -> upload; new compiler settings keep the download', () => {
    const repo = new TempRepo('mp-steps-compile-');
    cpSync(path.join(ROOT, 'examples/compile-pipeline'), repo.dir, { recursive: true });
    repo.commit('compile pipeline');
    mkdirSync(path.join(repo.dir, '.model-store/uncompiled'), { recursive: true });
    writeFileSync(
      path.join(repo.dir, '.model-store/uncompiled/model.bin'),
      'uncompiled weights\n'.repeat(100),
    );
    const TRAIN_COMPILE = ['train', '--local', '--config', 'compile-config.toml', '--output-dir', 'upload'];
    const first = mp(repo.dir, ...TRAIN_COMPILE, '--data-key', 'none');
    expect(first.status).toBe(0);
    expect(first.stderr).toContain(
      'running 4 step(s) in 4 level(s): download -> compile -> validate -> upload',
    );
    const [folder] = modelFolders(repo.dir, 'compiled');
    const m1 = manifestOf(repo.dir, `compiled/${folder}`);
    expect(m1.steps!.map((s) => s.name)).toEqual(['download', 'compile', 'validate', 'upload']);
    expect(
      readFileSync(path.join(repo.dir, '.model-store/compiled', folder, 'benchmark_results.xml'), 'utf8'),
    ).toContain('<testsuite name="regression" tests="2" failures="0" errors="0">');

    repo.write('compile.env', 'COMPILE_TARGET=cpu-avx2\nCOMPILE_LEVEL=9\n');
    const second = mp(repo.dir, ...TRAIN_COMPILE, '--data-key', 'none', '--force', '--sha', sha('4'));
    expect(second.status).toBe(0);
    const m2 = manifestOf(repo.dir, 'compiled/1.0.0-4444444');
    expect(m2.steps!.map((s) => [s.name, s.cacheHit])).toEqual([
      ['download', true],
      ['compile', false],
      ['validate', false],
      ['upload', false],
    ]);

    // a regression test failing stops the pipeline at validate: no model, nothing uploaded
    repo.write('tests/target.sh', 'exit 1\n');
    const third = mp(repo.dir, ...TRAIN_COMPILE, '--data-key', 'none', '--force', '--sha', sha('5'));
    expect(third.status).toBe(1);
    expect(third.stderr).toMatch(/validate step validate .* Not run: upload\./);
    expect(modelFolders(repo.dir, 'compiled').sort()).toEqual([folder, '1.0.0-4444444'].sort());
  });
});
