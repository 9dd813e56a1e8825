import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FsObjectStore } from '../src/adapters/local/fs-store';
import { S3ObjectStore, s3ClientConfig } from '../src/adapters/aws/s3-store';
import { MemoryState } from '../src/adapters/system/console-logger';
import type { Manifest } from '../src/core/manifest';
import type { Logger } from '../src/core/ports';
import { runCommand } from '../src/runner';
import { startS3Files, type S3Files } from './s3-files';
import {
  AWS_CLI_CONFIG,
  childEnv,
  FAKE_AWS_ENV,
  log,
  median,
  MiB,
  mustSucceed,
  runProc,
  runsOf,
  sizeLabel,
  type BenchContext,
  type BenchOutput,
  type Series,
  type Verdict,
} from './lib';

const quiet: Logger = {
  info: () => undefined,
  warn: (m) => log(`fetch setup warning: ${m}`),
  error: (m) => log(`fetch setup error: ${m}`),
  debug: () => undefined,
  mask: () => undefined,
  group: (_t, fn) => fn(),
};

const SHA = 'abc1234def5678abc1234def5678abc1234def56';
const FOLDER = 'models/1.0.0-aaaaaaa/';
const CONFIG = 'version = "1.0.0"\n';

/**
 * Bytes shaped like float32 weights (random mantissas, a narrow band of exponents), so deflate shrinks them
 * a little as it does real checkpoints, and no two MiB are alike.
 */
async function weightsFile(file: string, bytes: number): Promise<void> {
  const fh = await fs.open(file, 'w');
  try {
    for (let off = 0; off < bytes; off += MiB) {
      const block = randomBytes(Math.min(MiB, bytes - off));
      for (let i = 3; i < block.length; i += 4) block[i] = 0x3c + (block[i] & 0x03);
      await fh.write(block, 0, block.length, off);
    }
  } finally {
    await fh.close();
  }
}

/**
 * A model.zip of about `bytes`: two large weight files (deflated, as `zip` does by default) and a tokenizer
 * folder of small files, made with Info-ZIP's zip (-1: quicker to build, as quick to unpack).
 */
async function buildModelZip(ctx: BenchContext, bytes: number): Promise<string> {
  const src = path.join(ctx.tmp, 'fetch-src');
  await fs.mkdir(path.join(src, 'tokenizer'), { recursive: true });
  const raw = Math.round(bytes * 1.07); // deflate takes back about 7% of these bytes
  await weightsFile(path.join(src, 'weights.bin'), Math.round(raw * 0.65));
  await weightsFile(path.join(src, 'embeddings.bin'), Math.round(raw * 0.35));
  for (let i = 0; i < 50; i++)
    writeFileSync(path.join(src, 'tokenizer', `vocab-${i}.txt`), `token-${i}\n`.repeat(2000));
  writeFileSync(path.join(src, 'config.json'), JSON.stringify({ layers: 24, hidden: 1024 }));
  const zip = path.join(ctx.tmp, 'fetch-model.zip');
  mustSucceed(await runProc('zip', ['-q', '-r', '-1', zip, '.'], { cwd: src }), 'zip');
  await fs.rm(src, { recursive: true, force: true });
  return zip;
}

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  const { createReadStream } = await import('node:fs');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

/**
 * The model folder, promoted to development and staging, in a folder store: <root>/<bucket>/models/...,
 * which the plain file server serves as that bucket, and which is copied to moto.
 */
async function buildStore(ctx: BenchContext, zip: string, bucket: string, cwd: string): Promise<string> {
  const root = path.join(ctx.tmp, 'fetch-files');
  const storeDir = path.join(root, bucket);
  const store = new FsObjectStore(storeDir);
  const up = await store.uploadFile(FOLDER + 'model.zip', zip, { sha256: true });
  await store.put(FOLDER + 'search-config.toml', CONFIG);
  const bench = JSON.stringify({ metrics: { top1: 0.9 } });
  await store.put(FOLDER + 'benchmark_results.json', bench);
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const manifest: Manifest = {
    schemaVersion: 1,
    model: { name: 'search', version: '1.0.0', sha: 'a'.repeat(40) },
    files: [
      { name: 'model.zip', size: up.size, sha256: up.sha256 ?? (await sha256Of(zip)) },
      { name: 'benchmark_results.json', size: bench.length, sha256: sha(bench) },
      { name: 'search-config.toml', size: CONFIG.length, sha256: sha(CONFIG) },
    ],
    config: { path: 'search-config.toml', sha256: sha(CONFIG) },
    git: { sha: 'a'.repeat(40), branch: 'main' },
    build: {
      backend: 'local',
      startedAt: '2024-01-01T00:00:00.000Z',
      finishedAt: '2024-01-01T01:00:00.000Z',
      actor: 'bench',
    },
    benchmark: { passed: true, file: 'benchmark_results.json' },
  } as Manifest;
  await store.put(FOLDER + 'manifest.json', JSON.stringify(manifest, null, 2));
  for (const environment of ['development', 'staging'])
    await runCommand({
      command: 'promote',
      inputs: {
        backend: 'local',
        'local-store': storeDir,
        'store-prefix': 'models',
        sha: SHA,
        'model-prefix': FOLDER,
        environment,
      },
      env: { ...FAKE_AWS_ENV, USER: 'bench' },
      cwd,
      logger: quiet,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
  return root;
}

/** Every object of the folder store, copied to a new bucket on moto. */
async function copyToMoto(ctx: BenchContext, storeDir: string, bucket: string): Promise<void> {
  const admin = new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: ctx.endpoint }));
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  const from = new FsObjectStore(storeDir);
  const to = new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: ctx.endpoint });
  for await (const o of from.list('models/')) {
    if (o.size > 8 * MiB) await to.uploadFile(o.key, path.join(storeDir, ...o.key.split('/')));
    else await to.put(o.key, (await from.get(o.key))!.body);
  }
  admin.destroy();
}

interface Server {
  name: string;
  endpoint: string;
  bucket: string;
}

/**
 * fetch-model of a staging model (download model.zip and its config, verify sha256, unpack, record the
 * deployment) through the bundled CLI, against the shell chain a user would write instead:
 * `aws s3 cp` (aws-cli v2, its own binary) + `sha256sum` + `unzip`, paired run by run, on a plain file
 * server (reads only the bytes asked for, as S3) and on moto.
 */
export async function fetchModel(ctx: BenchContext): Promise<BenchOutput> {
  const notes: string[] = [];
  const cli = path.join(ctx.root, ctx.flags.get('cli') ?? 'dist/cli/index.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: npm run bundle first`);
  const awsV2 = ctx.flags.get('aws-v2') ?? '/usr/bin/aws';
  if (!existsSync(awsV2)) throw new Error(`${awsV2} (aws-cli v2) is missing: apt-get install -y awscli`);
  const size = ctx.flags.get('fetch-size')
    ? Number(ctx.flags.get('fetch-size')) * MiB
    : ctx.smoke
      ? 24 * MiB
      : 1024 * MiB;
  const runs = runsOf(ctx, 5);
  const wanted = ctx.flags.get('fetch-peers')?.split(',') ?? ['files', 'moto'];
  const bucket = `bench-fetch-${randomBytes(4).toString('hex')}`;
  const cwd = path.join(ctx.tmp, 'fetch-cwd');
  await fs.mkdir(cwd, { recursive: true });
  writeFileSync(path.join(cwd, 'search-config.toml'), CONFIG);

  log(`fetch-model: building a ${sizeLabel(size)} model.zip`);
  const zip = await buildModelZip(ctx, size);
  const zipBytes = (await fs.stat(zip)).size;
  const root = await buildStore(ctx, zip, bucket, cwd);
  await fs.rm(zip, { force: true });
  let files: S3Files | undefined;
  const servers: Server[] = [];
  try {
    if (wanted.includes('files')) {
      files = await startS3Files(root);
      servers.push({ name: 'plain file server', endpoint: files.endpoint, bucket });
    }
    if (wanted.includes('moto')) {
      log('fetch-model: copying the store to moto');
      await copyToMoto(ctx, path.join(root, bucket), bucket);
      servers.push({ name: 'moto', endpoint: ctx.endpoint, bucket });
    }
    const awsConfig = path.join(ctx.tmp, 'aws-config');
    // as against S3 over https: no payload signing (a GET has no payload; kept for the same config as upload)
    writeFileSync(awsConfig, AWS_CLI_CONFIG);
    const env = childEnv({ AWS_CONFIG_FILE: awsConfig });
    const label = sizeLabel(size);
    const series: Series[] = [];
    const verdicts: Verdict[] = [];
    for (const server of servers) {
      const out = path.join(ctx.tmp, 'fetch-out');
      const ourCpu: number[] = [];
      const shellCpu: number[] = [];
      const ours = async (): Promise<number> => {
        const r = mustSucceed(
          await runProc(
            process.execPath,
            [
              cli,
              'fetch-model',
              '--environment',
              'staging',
              '--dest',
              out,
              '--backend',
              'aws',
              '--bucket',
              server.bucket,
              '--s3-endpoint',
              server.endpoint,
              '--region',
              'us-east-1',
              '--store-prefix',
              'models',
              '--sha',
              SHA,
            ],
            { cwd, env, measureRss: true },
          ),
          'fetch-model',
        );
        if (r.cpuS !== undefined) ourCpu.push(r.cpuS);
        if (!existsSync(path.join(out, 'weights.bin'))) throw new Error('fetch-model left no weights.bin');
        return r.ms;
      };
      const shell = async (): Promise<number> => {
        const script =
          `set -e; "$AWS" s3 cp "s3://$BUCKET/${FOLDER}model.zip" "$OUT.zip" --endpoint-url "$ENDPOINT" --only-show-errors; ` +
          `sha256sum "$OUT.zip" > /dev/null; unzip -q "$OUT.zip" -d "$OUT"`;
        const r = mustSucceed(
          await runProc('bash', ['-c', script], {
            cwd,
            env: { ...env, AWS: awsV2, BUCKET: server.bucket, OUT: out, ENDPOINT: server.endpoint },
            measureRss: true,
          }),
          'aws s3 cp + sha256sum + unzip',
        );
        if (r.cpuS !== undefined) shellCpu.push(r.cpuS);
        if (!existsSync(path.join(out, 'weights.bin')))
          throw new Error('the shell chain left no weights.bin');
        return r.ms;
      };
      const clean = () =>
        Promise.all([fs.rm(out, { recursive: true, force: true }), fs.rm(`${out}.zip`, { force: true })]);
      const ourMs: number[] = [];
      const shellMs: number[] = [];
      for (let i = 0; i < runs; i++) {
        // paired, alternating which goes first (the page cache and moto's state favour neither)
        for (const which of i % 2 === 0 ? ['ours', 'shell'] : ['shell', 'ours']) {
          await clean();
          const ms = which === 'ours' ? await ours() : await shell();
          (which === 'ours' ? ourMs : shellMs).push(ms);
          log(`fetch-model ${label} on ${server.name}, ${which}: ${(ms / 1000).toFixed(2)} s`);
        }
      }
      await clean();
      series.push(
        {
          bench: 'fetch-model',
          name: `${label} from ${server.name}: fetch-model (CLI)`,
          unit: 's',
          samples: ourMs.map((m) => m / 1000),
        },
        {
          bench: 'fetch-model',
          name: `${label} from ${server.name}: aws s3 cp (v2) + sha256sum + unzip`,
          unit: 's',
          samples: shellMs.map((m) => m / 1000),
        },
      );
      if (ourCpu.length === runs && shellCpu.length === runs)
        series.push(
          {
            bench: 'fetch-model',
            name: `${label} from ${server.name}: fetch-model CPU (user + sys)`,
            unit: 's',
            samples: ourCpu,
          },
          {
            bench: 'fetch-model',
            name: `${label} from ${server.name}: shell chain CPU (user + sys)`,
            unit: 's',
            samples: shellCpu,
          },
        );
      verdicts.push({
        bench: 'fetch-model',
        name: `${label} from ${server.name}: time fetch-model / shell chain`,
        samples: ourMs.map((m, i) => m / shellMs[i]),
        unit: 'x',
        target: '<= 0.8',
        met: median(ourMs.map((m, i) => m / shellMs[i])) <= 0.8,
        note: `median ${(median(ourMs) / 1000).toFixed(2)} s vs ${(median(shellMs) / 1000).toFixed(2)} s; zip ${(zipBytes / MiB).toFixed(0)} MiB`,
      });
    }
    return { series, verdicts, notes };
  } finally {
    await files?.stop();
    await fs.rm(root, { recursive: true, force: true });
  }
}
