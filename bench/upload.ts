import { CreateBucketCommand, DeleteObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { s3ClientConfig } from '../src/adapters/aws/s3-store';
import { DEFAULT_UPLOAD_SETTINGS } from '../src/adapters/aws/file-upload';
import {
  childEnv,
  GiB,
  HAVE_GNU_TIME,
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

/** part size MiB x parts in flight tried by --tune, on the first size. */
const TUNE_GRID: [number, number][] = [
  [5, 8],
  [8, 4],
  [8, 8],
  [8, 16],
  [16, 4],
  [16, 8],
  [32, 4],
];

/**
 * A file of `bytes` written in 1 MiB chunks of random bytes, each stamped with its index so no two parts
 * are alike (a sparse or constant file could flatter a store or a checksum).
 */
async function makeFile(file: string, bytes: number): Promise<void> {
  const block = randomBytes(MiB);
  const fh = await fs.open(file, 'w');
  try {
    for (let off = 0, i = 0; off < bytes; off += MiB, i++) {
      block.writeUInt32BE(i, 0);
      const n = Math.min(MiB, bytes - off);
      await fh.write(block, 0, n, off);
    }
  } finally {
    await fh.close();
  }
}

interface UploadRun {
  ms: number;
  peakRssMb?: number;
  /** Our child's own timing of uploadFile, without node's start-up. */
  innerMs?: number;
}

export async function upload(ctx: BenchContext): Promise<BenchOutput> {
  const notes: string[] = [];
  const child = path.join(ctx.root, 'build/bench/upload-child.js');
  if (!existsSync(child)) throw new Error(`${child} is missing: compile first (npm run bench compiles)`);
  if (!HAVE_GNU_TIME)
    notes.push('upload: /usr/bin/time is missing: peak RSS comes from the child itself only');

  const sizes = ctx.flags.get('upload-sizes')
    ? ctx.flags
        .get('upload-sizes')!
        .split(',')
        .map((s) => Number(s) * MiB)
    : ctx.smoke
      ? [20 * MiB] // past one 8 MiB part, so the smoke run takes the multipart path
      : [1 * GiB, 4 * GiB];
  const partSize = ctx.flags.get('part-size') ? Number(ctx.flags.get('part-size')) * MiB : undefined;
  const concurrency = ctx.flags.get('concurrency') ? Number(ctx.flags.get('concurrency')) : undefined;
  const ourLabel = `ours (part ${(partSize ?? DEFAULT_UPLOAD_SETTINGS.partSize) / MiB} MiB x ${concurrency ?? DEFAULT_UPLOAD_SETTINGS.concurrency})`;

  const bucket = `bench-upload-${randomBytes(4).toString('hex')}`;
  const s3 = new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: ctx.endpoint }));
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const env = childEnv();

  const ours = async (file: string, key: string, part?: number, inFlight?: number): Promise<UploadRun> => {
    const job = { endpoint: ctx.endpoint, bucket, key, file, partSize: part, concurrency: inFlight };
    const r = mustSucceed(
      await runProc(process.execPath, [child, JSON.stringify(job)], { env, measureRss: true }),
      'upload-child',
    );
    const out = JSON.parse(r.stdout) as { ms: number; maxRssMb: number };
    return { ms: r.ms, peakRssMb: r.peakRssMb ?? out.maxRssMb, innerMs: out.ms };
  };
  const aws = async (file: string, key: string): Promise<UploadRun> => {
    const r = mustSucceed(
      await runProc(
        'aws',
        ['s3', 'cp', file, `s3://${bucket}/${key}`, '--endpoint-url', ctx.endpoint, '--only-show-errors'],
        { env, measureRss: true },
      ),
      'aws s3 cp',
    );
    return { ms: r.ms, peakRssMb: r.peakRssMb };
  };
  // checks the upload landed whole, then frees moto's memory before the next run
  const verifyAndDrop = async (key: string, bytes: number): Promise<void> => {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (head.ContentLength !== bytes)
      throw new Error(`s3://${bucket}/${key} has ${head.ContentLength} bytes, expected ${bytes}`);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  };

  const series: Series[] = [];
  const verdicts: Verdict[] = [];
  const runs = runsOf(ctx, 3);
  for (const [index, bytes] of sizes.entries()) {
    const label = sizeLabel(bytes);
    const file = path.join(ctx.tmp, `upload-${bytes}.bin`);
    try {
      log(`upload: writing ${label} test file`);
      await makeFile(file, bytes);
      const mibps = (ms: number): number => bytes / MiB / (ms / 1000);
      const o: UploadRun[] = [];
      const a: UploadRun[] = [];
      for (let i = 0; i < runs; i++) {
        // alternate who goes first, so neither always meets a moto that just freed memory
        const order = i % 2 === 0 ? ['aws', 'ours'] : ['ours', 'aws'];
        for (const who of order) {
          const key = `${who}/${label.replace(' ', '')}-${i}`;
          if (who === 'aws') a.push(await aws(file, key));
          else o.push(await ours(file, key, partSize, concurrency));
          await verifyAndDrop(key, bytes);
        }
        log(
          `upload ${label} run ${i + 1}/${runs}: ours ${mibps(o[i].ms).toFixed(0)} MiB/s, aws ${mibps(a[i].ms).toFixed(0)} MiB/s`,
        );
      }
      const bench = 'upload';
      series.push(
        { bench, name: `${label} ${ourLabel}`, unit: 'MiB/s', samples: o.map((r) => mibps(r.ms)) },
        { bench, name: `${label} aws s3 cp`, unit: 'MiB/s', samples: a.map((r) => mibps(r.ms)) },
        {
          bench,
          name: `${label} ours, uploadFile only (no node start)`,
          unit: 'MiB/s',
          samples: o.map((r) => mibps(r.innerMs!)),
        },
        { bench, name: `${label} ours peak RSS`, unit: 'MB', samples: o.map((r) => r.peakRssMb ?? NaN) },
        { bench, name: `${label} aws s3 cp peak RSS`, unit: 'MB', samples: a.map((r) => r.peakRssMb ?? NaN) },
      );
      const ratio = o.map((r, i) => a[i].ms / r.ms);
      const rss = o.map((r) => r.peakRssMb ?? NaN);
      verdicts.push(
        {
          bench,
          name: `${label} throughput ours / aws s3 cp`,
          samples: ratio,
          unit: 'x',
          target: '>= 1',
          met: median(ratio) >= 1,
        },
        {
          bench,
          name: `${label} ours peak RSS`,
          samples: rss,
          unit: 'MB',
          target: '< 300',
          met: Math.max(...rss) < 300,
          note: 'judged on the max',
        },
      );

      if (index === 0 && ctx.flags.has('tune')) {
        for (const [p, q] of TUNE_GRID) {
          const t: UploadRun[] = [];
          for (let i = 0; i < runs; i++) {
            const key = `tune/${p}x${q}-${i}`;
            t.push(await ours(file, key, p * MiB, q));
            await verifyAndDrop(key, bytes);
          }
          series.push(
            {
              bench: 'upload-tune',
              name: `${label} part ${p} MiB x ${q} in flight`,
              unit: 'MiB/s',
              samples: t.map((r) => mibps(r.ms)),
            },
            {
              bench: 'upload-tune',
              name: `${label} part ${p} MiB x ${q} in flight peak RSS`,
              unit: 'MB',
              samples: t.map((r) => r.peakRssMb ?? NaN),
            },
          );
          log(`upload tune ${p} MiB x ${q} in flight: ${mibps(median(t.map((r) => r.ms))).toFixed(0)} MiB/s`);
        }
      }
    } finally {
      await fs.rm(file, { force: true });
    }
  }
  return { series, verdicts, notes };
}
