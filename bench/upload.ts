import { CreateBucketCommand, DeleteObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { s3ClientConfig } from '../src/adapters/aws/s3-store';
import { DEFAULT_UPLOAD_SETTINGS } from '../src/adapters/aws/file-upload';
import { startS3Sink } from './s3-sink';
import {
  childEnv,
  GiB,
  HAVE_GNU_TIME,
  log,
  median,
  peerBinary,
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

/** The stores both tools upload to, each in turn. */
const PEERS = ['moto', 'sink'] as const;
type Peer = (typeof PEERS)[number];

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
  const peers = (ctx.flags.get('upload-peers')?.split(',') ?? [...PEERS]) as Peer[];
  for (const p of peers) if (!PEERS.includes(p)) throw new Error(`--upload-peers: unknown store "${p}"`);
  const partSize = ctx.flags.get('part-size') ? Number(ctx.flags.get('part-size')) * MiB : undefined;
  const concurrency = ctx.flags.get('concurrency') ? Number(ctx.flags.get('concurrency')) : undefined;
  const ourLabel = `ours (part ${(partSize ?? DEFAULT_UPLOAD_SETTINGS.partSize) / MiB} MiB x ${concurrency ?? DEFAULT_UPLOAD_SETTINGS.concurrency})`;

  const sink = peers.includes('sink') ? await startS3Sink() : undefined;
  try {
    const series: Series[] = [];
    const verdicts: Verdict[] = [];
    for (const [index, bytes] of sizes.entries()) {
      const file = path.join(ctx.tmp, `upload-${bytes}.bin`);
      try {
        log(`upload: writing ${sizeLabel(bytes)} test file`);
        await makeFile(file, bytes);
        for (const peer of peers) {
          const endpoint = peer === 'sink' ? sink!.endpoint : ctx.endpoint;
          const out = await compareOnPeer(ctx, {
            peer,
            endpoint,
            child,
            file,
            bytes,
            partSize,
            concurrency,
            ourLabel,
          });
          series.push(...out.series);
          verdicts.push(...out.verdicts);
          notes.push(...out.notes);
          if (index === 0 && peer === peers[0] && ctx.flags.has('tune'))
            series.push(...(await tune(ctx, { peer, endpoint, child, file, bytes })));
        }
      } finally {
        await fs.rm(file, { force: true });
      }
    }
    return { series, verdicts, notes };
  } finally {
    await sink?.stop();
  }
}

interface Comparison {
  peer: Peer;
  endpoint: string;
  child: string;
  file: string;
  bytes: number;
  partSize?: number;
  concurrency?: number;
  ourLabel?: string;
}

/** One uploader per kind, bound to a fresh bucket on one store. */
async function uploaders(endpoint: string, child: string) {
  const bucket = `bench-upload-${randomBytes(4).toString('hex')}`;
  const s3 = new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint }));
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const env = childEnv();
  const ours = async (
    file: string,
    key: string,
    part?: number,
    inFlight?: number,
    hash?: 'shared' | 'separate',
  ): Promise<UploadRun> => {
    const job = { endpoint, bucket, key, file, partSize: part, concurrency: inFlight, hash };
    const r = mustSucceed(
      await runProc(process.execPath, [child, JSON.stringify(job)], { env, measureRss: true }),
      'upload-child',
    );
    const out = JSON.parse(r.stdout) as { ms: number; maxRssMb: number };
    return { ms: r.ms, peakRssMb: r.peakRssMb ?? out.maxRssMb, innerMs: out.ms };
  };
  const awsBin = peerBinary('aws');
  const aws = async (file: string, key: string): Promise<UploadRun> => {
    if (!awsBin) throw new Error('the upload bench needs the aws CLI as its peer');
    const r = mustSucceed(
      await runProc(
        awsBin,
        ['s3', 'cp', file, `s3://${bucket}/${key}`, '--endpoint-url', endpoint, '--only-show-errors'],
        { env, measureRss: true },
      ),
      'aws s3 cp',
    );
    return { ms: r.ms, peakRssMb: r.peakRssMb };
  };
  // checks the upload landed whole, then frees the store's memory before the next run
  const verifyAndDrop = async (key: string, bytes: number): Promise<void> => {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (head.ContentLength !== bytes)
      throw new Error(`s3://${bucket}/${key} has ${head.ContentLength} bytes, expected ${bytes}`);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  };
  // rclone (Debian package) when installed: its own S3 client, 5 MiB parts x 4 by default, given 8 x 8 as ours
  const rcloneBin = peerBinary('rclone');
  const rclone = rcloneBin
    ? async (file: string, key: string): Promise<UploadRun> => {
        const r = mustSucceed(
          await runProc(
            rcloneBin,
            [
              'copyto',
              file,
              `bench:${bucket}/${key}`,
              '--s3-chunk-size',
              '8M',
              '--s3-upload-concurrency',
              '8',
              '--s3-disable-checksum', // no whole-file MD5 pass before the upload, as ours and aws s3 cp
            ],
            {
              env: {
                ...env,
                RCLONE_CONFIG_BENCH_TYPE: 's3',
                RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
                RCLONE_CONFIG_BENCH_ENDPOINT: endpoint,
                RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID ?? '',
                RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY ?? '',
                RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
              },
              measureRss: true,
            },
          ),
          'rclone copyto',
        );
        return { ms: r.ms, peakRssMb: r.peakRssMb };
      }
    : undefined;
  return { ours, aws, rclone, verifyAndDrop };
}

const PEER_LABEL: Record<Peer, string> = { moto: 'moto', sink: 'checking sink' };

async function compareOnPeer(
  ctx: BenchContext,
  c: Comparison,
): Promise<{ series: Series[]; verdicts: Verdict[]; notes: string[] }> {
  const tools = await uploaders(c.endpoint, c.child);
  const { ours, aws, verifyAndDrop } = tools;
  let rclone = tools.rclone;
  const notes: string[] = [];
  const label = sizeLabel(c.bytes);
  const on = PEER_LABEL[c.peer];
  const mibps = (ms: number): number => c.bytes / MiB / (ms / 1000);
  const runs = runsOf(ctx, 3);
  const o: UploadRun[] = [];
  const a: UploadRun[] = [];
  // train's upload path: the upload with its sha256 from the same read, and (before) a second read to hash
  const shared: UploadRun[] = [];
  const separate: UploadRun[] = [];
  const rc: UploadRun[] = [];
  const first = ['aws', ...(rclone ? ['rclone'] : []), 'ours', 'shared', 'separate'];
  const orders = [first, [...first].reverse()];
  for (let i = 0; i < runs; i++) {
    // alternate who goes first, so neither always meets a store that just freed memory
    for (const who of orders[i % 2]) {
      const key = `${who}/${label.replace(' ', '')}-${i}`;
      if (who === 'aws') a.push(await aws(c.file, key));
      else if (who === 'rclone') {
        if (!rclone) continue;
        try {
          rc.push(await rclone(c.file, key));
        } catch (err) {
          // a peer that cannot upload here is reported, not allowed to end the comparison
          const why = ((err as Error).message.match(/(InvalidPart|Error)[^\n]*/) ?? ['failed'])[0];
          notes.push(`upload ${label} to ${on}: rclone failed (${why.slice(0, 160)}); left out`);
          rclone = undefined;
          rc.length = 0;
          continue;
        }
      } else if (who === 'ours') o.push(await ours(c.file, key, c.partSize, c.concurrency));
      else {
        const r = await ours(c.file, key, c.partSize, c.concurrency, who as 'shared' | 'separate');
        (who === 'shared' ? shared : separate).push(r);
      }
      await verifyAndDrop(key, c.bytes);
    }
    log(
      `upload ${label} to ${on}, run ${i + 1}/${runs}: ours ${mibps(o[i].ms).toFixed(0)} MiB/s, aws ${mibps(a[i].ms).toFixed(0)} MiB/s`,
    );
  }
  const bench = 'upload';
  const series: Series[] = [
    { bench, name: `${label} to ${on}: ${c.ourLabel}`, unit: 'MiB/s', samples: o.map((r) => mibps(r.ms)) },
    { bench, name: `${label} to ${on}: aws s3 cp`, unit: 'MiB/s', samples: a.map((r) => mibps(r.ms)) },
    ...(rclone
      ? [
          {
            bench,
            name: `${label} to ${on}: rclone copyto`,
            unit: 'MiB/s',
            samples: rc.map((r) => mibps(r.ms)),
          },
        ]
      : []),
    {
      bench,
      name: `${label} to ${on}: ours, uploadFile only (no node start)`,
      unit: 'MiB/s',
      samples: o.map((r) => mibps(r.innerMs!)),
    },
    {
      bench,
      name: `${label} to ${on}: train's path, uploadFile + sha256 from the same read`,
      unit: 'MiB/s',
      samples: shared.map((r) => mibps(r.innerMs!)),
    },
    {
      bench,
      name: `${label} to ${on}: train's path before, uploadFile + a separate sha256 read`,
      unit: 'MiB/s',
      samples: separate.map((r) => mibps(r.innerMs!)),
    },
    {
      bench,
      name: `${label} to ${on}: ours peak RSS`,
      unit: 'MB',
      samples: o.map((r) => r.peakRssMb ?? NaN),
    },
    {
      bench,
      name: `${label} to ${on}: aws s3 cp peak RSS`,
      unit: 'MB',
      samples: a.map((r) => r.peakRssMb ?? NaN),
    },
  ];
  const ratio = o.map((r, i) => a[i].ms / r.ms);
  // the fastest peer of each paired run
  const fastest = o.map((r, i) => Math.min(a[i].ms, rc[i]?.ms ?? Infinity) / r.ms);
  const rss = o.map((r) => r.peakRssMb ?? NaN);
  const trainRatio = (runs: UploadRun[]) => runs.map((r, i) => o[i].innerMs! / r.innerMs!);
  const verdicts: Verdict[] = [
    {
      bench,
      name: `${label} to ${on}: throughput ours / aws s3 cp`,
      samples: ratio,
      unit: 'x',
      target: '>= 1',
      met: median(ratio) >= 1,
    },
    ...(rclone
      ? [
          {
            bench,
            name: `${label} to ${on}: throughput ours / fastest peer (aws s3 cp, rclone)`,
            samples: fastest,
            unit: 'x',
            target: '>= 1',
            met: median(fastest) >= 1,
          },
        ]
      : []),
    {
      bench,
      name: `${label} to ${on}: ours peak RSS`,
      samples: rss,
      unit: 'MB',
      target: '< 300',
      met: Math.max(...rss) < 300,
      note: 'judged on the max',
    },
    {
      bench,
      name: `${label} to ${on}: train's path (upload + sha256) / uploadFile alone`,
      samples: trainRatio(shared),
      unit: 'x',
      target: '>= 0.95',
      met: median(trainRatio(shared)) >= 0.95,
    },
    {
      bench,
      name: `${label} to ${on}: train's path before (separate sha256 read) / uploadFile alone`,
      samples: trainRatio(separate),
      unit: 'x',
      target: 'report',
      met: undefined,
    },
  ];
  return { series, verdicts, notes };
}

/** --tune: our uploader alone over a grid of part sizes x parts in flight. */
async function tune(ctx: BenchContext, c: Comparison): Promise<Series[]> {
  const { ours, verifyAndDrop } = await uploaders(c.endpoint, c.child);
  const label = sizeLabel(c.bytes);
  const on = PEER_LABEL[c.peer];
  const mibps = (ms: number): number => c.bytes / MiB / (ms / 1000);
  const series: Series[] = [];
  for (const [p, q] of TUNE_GRID) {
    const t: UploadRun[] = [];
    for (let i = 0; i < runsOf(ctx, 3); i++) {
      const key = `tune/${p}x${q}-${i}`;
      t.push(await ours(c.file, key, p * MiB, q));
      await verifyAndDrop(key, c.bytes);
    }
    series.push(
      {
        bench: 'upload-tune',
        name: `${label} to ${on}: part ${p} MiB x ${q} in flight`,
        unit: 'MiB/s',
        samples: t.map((r) => mibps(r.ms)),
      },
      {
        bench: 'upload-tune',
        name: `${label} to ${on}: part ${p} MiB x ${q} in flight peak RSS`,
        unit: 'MB',
        samples: t.map((r) => r.peakRssMb ?? NaN),
      },
    );
    log(`upload tune ${p} MiB x ${q} in flight: ${mibps(median(t.map((r) => r.ms))).toFixed(0)} MiB/s`);
  }
  return series;
}
