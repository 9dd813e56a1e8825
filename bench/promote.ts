import { CreateBucketCommand, DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { S3ObjectStore, s3ClientConfig } from '../src/adapters/aws/s3-store';
import { MemoryState } from '../src/adapters/system/console-logger';
import { storedRecord, type Manifest } from '../src/core/manifest';
import type { Logger } from '../src/core/ports';
import { buildContext, findCommand } from '../src/runner';
import { TempRepo } from '../test/helpers/git-repo';
import {
  FAKE_AWS_ENV,
  log,
  median,
  MiB,
  nowMs,
  removeAtEnd,
  runsOf,
  sizeLabel,
  type BenchContext,
  type BenchOutput,
  type Series,
  type Verdict,
} from './lib';

const quiet: Logger = {
  info: () => undefined,
  warn: (m) => log(`promote warning: ${m}`),
  error: (m) => log(`promote error: ${m}`),
  debug: () => undefined,
  mask: () => undefined,
  group: (_t, fn) => fn(),
};

/** Requests by command and the body bytes S3 sent back, counted on the client (each try counts). */
function countTraffic(client: S3Client): { requests: Map<string, number>; bytesIn: () => number } {
  const requests = new Map<string, number>();
  let bytes = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? 'unknown';
      requests.set(name, (requests.get(name) ?? 0) + 1);
      const out = await next(args);
      const res = out.response as { headers?: Record<string, string> };
      if (name === 'GetObjectCommand') bytes += Number(res.headers?.['content-length'] ?? 0);
      return out;
    },
    { step: 'deserialize', name: 'benchTrafficCounter' },
  );
  return { requests, bytesIn: () => bytes };
}

async function randomFile(file: string, bytes: number): Promise<void> {
  const block = randomBytes(MiB);
  const fh = await fs.open(file, 'w');
  try {
    for (let off = 0, i = 0; off < bytes; off += MiB, i++) {
      block.writeUInt32BE(i, 0);
      await fh.write(block, 0, Math.min(MiB, bytes - off), off);
    }
  } finally {
    await fh.close();
  }
}

const VARIANTS = [
  { name: 'checksums recorded at upload (HEAD per file)', deep: false },
  { name: 'deep-verify (download + sha256, as before)', deep: true },
] as const;

/**
 * promote of one model (model.zip of the given size, uploaded as train uploads it) to development on moto,
 * from the command's own code with a counting S3 client: time, requests and bytes downloaded, with the
 * checks from the manifest's store records against the full download-and-hash path, paired run by run.
 */
export async function promote(ctx: BenchContext): Promise<BenchOutput> {
  const sizes = ctx.flags.get('promote-sizes')
    ? ctx.flags
        .get('promote-sizes')!
        .split(',')
        .map((s) => Number(s) * MiB)
    : ctx.smoke
      ? [20 * MiB]
      : [1024 * MiB];
  const runs = runsOf(ctx, 3);
  const repo = new TempRepo('mp-bench-promote-');
  removeAtEnd(repo.dir);
  repo.write('README.md', 'bench');
  repo.commit('main');
  const series: Series[] = [];
  const verdicts: Verdict[] = [];

  for (const size of sizes) {
    const label = sizeLabel(size);
    const bucket = `bench-promote-${randomBytes(4).toString('hex')}`;
    const admin = new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: ctx.endpoint }));
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    const folder = 'models/1.0.0-aaaaaaa/';
    const file = path.join(ctx.tmp, `promote-${size}.bin`);
    log(`promote: uploading a ${label} model.zip`);
    await randomFile(file, size);
    const writer = new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: ctx.endpoint });
    const up = await writer.uploadFile(folder + 'model.zip', file, { sha256: true });
    await fs.rm(file, { force: true });
    const manifest: Manifest = {
      schemaVersion: 1,
      model: { name: 'search', version: '1.0.0', sha: 'a'.repeat(40) },
      files: [{ name: 'model.zip', size: up.size, sha256: up.sha256!, stored: storedRecord(up) }],
    };
    await writer.put(folder + 'manifest.json', JSON.stringify(manifest));

    const samples = new Map(
      VARIANTS.map((v) => [v.name, { ms: [] as number[], requests: [] as number[], bytes: [] as number[] }]),
    );
    for (let i = 0; i < runs; i++) {
      for (const v of i % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) {
        // a fresh pointer each time, so every run checks the model (a re-run finds it already there)
        await admin.send(
          new DeleteObjectCommand({ Bucket: bucket, Key: 'models/_registry/environments/development.json' }),
        );
        const client = new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: ctx.endpoint }));
        const traffic = countTraffic(client);
        // the path before issue 19 downloaded with one GET (moto reads the whole object for every ranged GET,
        // which would make "before" slower here than it was)
        const store = new S3ObjectStore(
          {
            bucket,
            region: 'us-east-1',
            endpoint: ctx.endpoint,
            download: v.deep ? { concurrency: 1 } : undefined,
          },
          client,
        );
        const cmd = findCommand('promote');
        const t0 = nowMs();
        const context = await buildContext(cmd, {
          command: 'promote',
          inputs: {
            backend: 'aws',
            bucket,
            's3-endpoint': ctx.endpoint,
            region: 'us-east-1',
            'store-prefix': 'models',
            'model-prefix': '1.0.0-aaaaaaa/',
            environment: 'development',
            'deep-verify': String(v.deep),
          },
          env: { ...FAKE_AWS_ENV },
          cwd: repo.dir,
          logger: quiet,
          state: new MemoryState(),
          signal: new AbortController().signal,
        });
        context.deps = { ...context.deps, store: () => store };
        const result = await cmd.run(context);
        const ms = nowMs() - t0;
        if (result.outputs.changed !== 'true')
          throw new Error(`promote did not move the pointer (${v.name})`);
        const s = samples.get(v.name)!;
        s.ms.push(ms);
        s.requests.push([...traffic.requests.values()].reduce((a, b) => a + b, 0));
        s.bytes.push(traffic.bytesIn() / MiB);
        log(
          `promote ${label}, ${v.name}: ${(ms / 1000).toFixed(2)} s, ${s.requests.at(-1)} requests, ${s.bytes.at(-1)!.toFixed(2)} MiB downloaded`,
        );
      }
    }
    for (const v of VARIANTS) {
      const s = samples.get(v.name)!;
      series.push(
        {
          bench: 'promote',
          name: `${label} model, ${v.name}: time`,
          unit: 's',
          samples: s.ms.map((m) => m / 1000),
        },
        {
          bench: 'promote',
          name: `${label} model, ${v.name}: S3 requests`,
          unit: 'req',
          samples: s.requests,
        },
        { bench: 'promote', name: `${label} model, ${v.name}: downloaded`, unit: 'MiB', samples: s.bytes },
      );
    }
    const after = samples.get(VARIANTS[0].name)!;
    const before = samples.get(VARIANTS[1].name)!;
    verdicts.push(
      {
        bench: 'promote',
        name: `${label} model: downloaded with store checksums`,
        samples: after.bytes,
        unit: 'MiB',
        target: '< 0.01 (the manifest only)',
        met: Math.max(...after.bytes) < 0.01,
      },
      {
        bench: 'promote',
        name: `${label} model: time, store checksums / deep-verify`,
        samples: after.ms.map((m, i) => m / before.ms[i]),
        unit: 'x',
        target: 'report',
        met: undefined,
        note: `median ${(median(after.ms) / 1000).toFixed(2)} s vs ${(median(before.ms) / 1000).toFixed(2)} s`,
      },
    );
  }
  return { series, verdicts, notes: [] };
}
