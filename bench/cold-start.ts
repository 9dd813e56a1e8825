import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { S3ObjectStore, s3ClientConfig } from '../src/adapters/aws/s3-store';
import { configToml, TempRepo } from '../test/helpers/git-repo';
import { putModel } from '../test/helpers/models';
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

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
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
  if (existsSync(lib) && newestMtime(path.join(ctx.root, 'src')) > statSync(lib).mtimeMs)
    notes.push(
      `cold-start: ${path.relative(ctx.root, lib)} is older than src/: it measures the last bundle, not today's code`,
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
    const out = (JSON.parse(stdout) as { outputs?: Record<string, string> }).outputs ?? {};
    if (out['needs-model'] !== 'false' || out['model-prefix'] !== folder)
      throw new Error(`needs-model did not find the model already built: ${stdout.slice(0, 400)}`);
  };
  // the CLI entry loads no code cache (a planted one would run): every run compiles the bundle afresh
  const ours: Variant = {
    name: 'ours',
    cmd: process.execPath,
    args: [cli, ...ourArgs],
    check: checkOurs,
  };
  const aws: Variant = {
    name: 'aws s3api head-object',
    cmd: 'aws',
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
  };
  const variants: Variant[] = [aws, ours];

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
    const r = mustSucceed(
      await runProc(v.cmd, v.args, { cwd: repo.dir, env: { ...env, ...v.env }, timeoutMs: 60_000 }),
      v.name,
    );
    v.check?.(r.stdout);
    return r.ms;
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
    .filter((v) => v.name.startsWith('ours'))
    .map((v) => {
      const r = ratio(v.name);
      return {
        bench: 'cold-start',
        name: `${v.name} / aws head-object`,
        samples: r,
        unit: 'x',
        target: v === ours ? '< 1' : '< 1 (what it would give)',
        met: v === ours ? median(r) < 1 : undefined,
      };
    });
  return { series, verdicts, notes };
}
