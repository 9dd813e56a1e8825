import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { S3ObjectStore, s3ClientConfig } from '../src/adapters/aws/s3-store';
import { configToml, TempRepo } from '../test/helpers/git-repo';
import { putModel } from '../test/helpers/models';
import { awsClis } from './upload';
import {
  childEnv,
  log,
  removeAtEnd,
  median,
  mustSucceed,
  runProc,
  runsOf,
  type BenchContext,
  type BenchOutput,
  type Series,
} from './lib';

function git(root: string, args: string[]): string | undefined {
  const r = spawnSync('git', args, { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout : undefined;
}

/**
 * Why the bundle may not be today's src/, or undefined when it is. File times alone cannot tell: a
 * checkout or merge gives every file it writes the current time, so src/ looks newer than a dist/ built
 * from the same code. With git: a committed dist/ is stale when src/ changed (committed or not) since the
 * last commit that touched dist/; a dist/ rebuilt here (uncommitted) is stale when an uncommitted src/
 * file is newer than it.
 */
function staleBundle(root: string, lib: string): string | undefined {
  const libMs = statSync(lib).mtimeMs;
  const distDirty = (git(root, ['status', '--porcelain', '--', 'dist']) ?? '').trim() !== '';
  if (distDirty) {
    const changed = (git(root, ['status', '--porcelain', '--', 'src']) ?? '')
      .split('\n')
      .map((l) => l.slice(3).trim())
      .filter(Boolean)
      .filter((f) => existsSync(path.join(root, f)) && statSync(path.join(root, f)).mtimeMs > libMs);
    return changed.length > 0 ? `${changed[0]} changed after the last npm run bundle` : undefined;
  }
  const distCommit = git(root, ['log', '-1', '--format=%H', '--', 'dist'])?.trim();
  if (!distCommit) return undefined;
  const changed = (git(root, ['diff', '--name-only', distCommit, '--', 'src']) ?? '').trim();
  return changed ? `src/ changed since dist/ was last committed (${distCommit.slice(0, 7)})` : undefined;
}

function nodeMajorMinor(): [number, number] {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return [major, minor];
}

interface Variant {
  name: string;
  cmd: string;
  args: string[];
  env?: Record<string, string>;
  /** A second process timed with the first (the action's post step after its main step). */
  then?: { args: string[]; env: () => Record<string, string> };
  /** Fresh environment for each run (the runner's output and state files). */
  freshEnv?: () => Record<string, string>;
  /** The CLI's own answer is checked: a run that did not say "already built" is an error, not a sample. */
  check?: (stdout: string) => void;
}

/**
 * needs-model as a fresh `node dist/cli/index.js` process against a bucket that already holds the model,
 * against the one `aws s3api head-object` a hand-written check would run, interleaved run by run.
 */
export async function coldStart(ctx: BenchContext): Promise<BenchOutput> {
  const notes: string[] = [];
  const cli = path.resolve(ctx.root, ctx.flags.get('cli') ?? 'dist/cli/index.js');
  const lib = path.resolve(path.dirname(cli), '../lib/index.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run bundle first (or pass --cli)`);
  const stale = existsSync(lib) ? staleBundle(ctx.root, lib) : undefined;
  if (stale)
    notes.push(
      `cold-start: ${path.relative(ctx.root, lib)} may not be today's code (${stale}): it measures the last bundle`,
    );

  const bucket = `bench-cold-${randomBytes(4).toString('hex')}`;
  await new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: ctx.endpoint })).send(
    new CreateBucketCommand({ Bucket: bucket }),
  );
  const store = new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: ctx.endpoint });
  // main at 1.0.0, then a version bump: the bump needs a model unless it is already in the store, and it is
  const repo = new TempRepo('mp-bench-cold-');
  removeAtEnd(repo.dir);
  repo.write('search-config.toml', configToml('1.0.0'));
  repo.commit('1.0.0');
  repo.write('search-config.toml', configToml('1.1.0'));
  const sha7 = repo.commit('1.1.0').slice(0, 7);
  const folder = `1.1.0-${sha7}/`;
  await putModel(store, folder);

  const env = childEnv();
  const ourArgs = [
    'needs-model',
    '--json',
    '--bucket',
    bucket,
    '--s3-endpoint',
    ctx.endpoint,
    '--region',
    'us-east-1',
  ];
  const checkOurs = (stdout: string): void => {
    // --json is typed: needs-model is a boolean there (action outputs stay strings)
    const out = (JSON.parse(stdout) as { outputs?: Record<string, unknown> }).outputs ?? {};
    if (out['needs-model'] !== false || out['model-prefix'] !== folder)
      throw new Error(`needs-model did not find the model already built: ${stdout.slice(0, 400)}`);
  };
  // the CLI entry loads no code cache (a planted one would run): every run compiles the bundle afresh
  const ours: Variant = {
    name: 'ours',
    cmd: process.execPath,
    args: [cli, ...ourArgs],
    check: checkOurs,
  };
  // the action as the runner runs it: main, then post with the state main saved; no code cache exists there
  const actionEnv = (): Record<string, string> => {
    const dir = mkdtempSync(path.join(ctx.tmp, 'runner-'));
    const files = { GITHUB_OUTPUT: 'output', GITHUB_STATE: 'state', GITHUB_STEP_SUMMARY: 'summary' };
    const env: Record<string, string> = { GITHUB_ACTIONS: 'true', RUNNER_TEMP: dir };
    for (const [k, f] of Object.entries(files)) {
      env[k] = path.join(dir, f);
      writeFileSync(env[k], '');
    }
    return env;
  };
  const distRoot = path.resolve(path.dirname(cli), '..');
  const action: Variant = {
    name: 'action main + post (no code cache)',
    cmd: process.execPath,
    args: [path.join(distRoot, 'main/index.js')],
    env: {
      INPUT_COMMAND: 'needs-model',
      INPUT_BUCKET: bucket,
      'INPUT_S3-ENDPOINT': ctx.endpoint,
      INPUT_REGION: 'us-east-1',
    },
    freshEnv: actionEnv,
    then: { args: [path.join(distRoot, 'post/index.js')], env: () => ({ STATE_command: 'needs-model' }) },
    check: (stdout) => {
      if (/::error::/.test(stdout)) throw new Error(`the action failed: ${stdout.slice(0, 400)}`);
    },
  };
  // each aws CLI by its own binary (v1 behind pyenv's shim, v2 from Debian's awscli): v2 is the peer judged
  const clis = awsClis(ctx.flags);
  if (clis.length === 0) throw new Error('cold-start needs the aws CLI as its peer');
  const awsVariants: Variant[] = clis.map(({ name, bin }) => ({
    name: name.replace('aws s3 cp', 'aws s3api head-object'),
    cmd: bin,
    args: [
      's3api',
      'head-object',
      '--bucket',
      bucket,
      '--key',
      `${folder}manifest.json`,
      '--endpoint-url',
      ctx.endpoint,
    ],
    check: (stdout) => {
      if (!/ContentLength/.test(stdout)) throw new Error(`aws head-object said: ${stdout.slice(0, 300)}`);
    },
  }));
  const aws = awsVariants.find((v) => /\(v2/.test(v.name)) ?? awsVariants[0];
  const variants: Variant[] = [...awsVariants, ours];
  if (existsSync(path.join(distRoot, 'main/index.js'))) variants.push(action);

  const [major, minor] = nodeMajorMinor();
  if (major > 22 || (major === 22 && minor >= 1)) {
    const dir = path.join(ctx.tmp, 'node-compile-cache');
    mkdirSync(dir, { recursive: true });
    variants.push({ ...ours, name: 'ours + NODE_COMPILE_CACHE', env: { NODE_COMPILE_CACHE: dir } });
  } else {
    notes.push(
      `cold-start: NODE_COMPILE_CACHE is unavailable on node ${process.versions.node} (needs 22.1+): not measured`,
    );
  }
  // floors that explain the numbers: node itself, and node loading the bundle without running anything
  if (!ctx.smoke) variants.push({ name: 'node -e 0 (floor)', cmd: process.execPath, args: ['-e', '0'] });
  if (!ctx.smoke && existsSync(lib))
    variants.push({
      name: 'node + require(bundle) only',
      cmd: process.execPath,
      args: ['-e', `require(${JSON.stringify(lib)})`],
    });

  const runOnce = async (v: Variant): Promise<number> => {
    const fresh = v.freshEnv?.() ?? {};
    const r = mustSucceed(
      await runProc(v.cmd, v.args, { cwd: repo.dir, env: { ...env, ...fresh, ...v.env }, timeoutMs: 60_000 }),
      v.name,
    );
    v.check?.(r.stdout);
    if (!v.then) return r.ms;
    const env2 = { ...env, ...fresh, ...v.env, ...v.then.env() };
    const r2 = mustSucceed(
      await runProc(v.cmd, v.then.args, { cwd: repo.dir, env: env2, timeoutMs: 60_000 }),
      `${v.name} (second step)`,
    );
    v.check?.(r2.stdout);
    return r.ms + r2.ms;
  };

  // one untimed run each: page cache, pyc files and the compile caches are warm for every timed run
  for (const v of variants) await runOnce(v);
  const runs = runsOf(ctx, 15);
  const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  for (let i = 0; i < runs; i++) {
    for (const v of variants) samples.get(v.name)!.push(await runOnce(v));
  }
  log(`cold-start: ${runs} runs of ${variants.length} variants done`);

  const series: Series[] = variants.map((v) => ({
    bench: 'cold-start',
    name: v.name,
    unit: 'ms',
    samples: samples.get(v.name)!,
  }));
  const awsMs = samples.get(aws.name)!;
  const ratio = (name: string): number[] => samples.get(name)!.map((ms, i) => ms / awsMs[i]);
  const verdicts = variants
    .filter((v) => v.name.startsWith('ours') || v === action)
    .map((v) => {
      const r = ratio(v.name);
      const target = v === action ? 0.5 : 1;
      const judged = v === ours || v === action;
      return {
        bench: 'cold-start',
        name: `${v.name} / ${aws.name}`,
        samples: r,
        unit: 'x',
        target: judged ? `< ${target}` : '< 1 (what it would give)',
        met: judged ? median(r) < target : undefined,
      };
    });
  for (const other of awsVariants.filter((v) => v !== aws))
    verdicts.push({
      bench: 'cold-start',
      name: `${action.name} / ${other.name}`,
      samples: samples.get(action.name)?.map((ms, i) => ms / samples.get(other.name)![i]) ?? [],
      unit: 'x',
      target: 'report',
      met: undefined,
    });
  return { series, verdicts, notes };
}
