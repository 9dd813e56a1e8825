import { CreateBucketCommand, DeleteObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Agent as HttpsAgent } from 'node:https';
import { existsSync, promises as fs, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { s3ClientConfig } from '../src/adapters/aws/s3-store';
import { DEFAULT_UPLOAD_SETTINGS } from '../src/adapters/aws/file-upload';
import { startS3Sink } from './s3-sink';
import { selfSignedCert, tlsFront, type BenchTls } from './tls';
import {
  AWS_CLI_CONFIG,
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
  /** CPU seconds (user + sys) of the uploading process, from /usr/bin/time. */
  cpuS?: number;
  /** CPU seconds of the store while this run uploaded (the checking sink runs in this process). */
  storeCpuS?: number;
}

/**
 * The stores the tools upload to, each in turn. 'paced' is the checking sink behind a link of
 * --upload-pace MiB/s (a remote store's network path): there only our two upload paths are compared, to
 * show whether train's hashing keeps up with the network when the store does not share this machine's CPU.
 */
const PEERS = ['moto', 'sink', 'paced'] as const;
/** The paced store's link, MiB/s, unless --upload-pace says otherwise: about 1.7 Gbit/s. */
const DEFAULT_PACE = 200;
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

  // https by default, as S3 is reached (unsigned payloads); --upload-http for the old plain http runs
  const tls = ctx.flags.has('upload-http') ? undefined : selfSignedCert(ctx.tmp);
  const pace = Number(ctx.flags.get('upload-pace') ?? DEFAULT_PACE);
  if (!(pace > 0)) throw new Error('--upload-pace must be a number of MiB/s above 0');
  const sink = peers.includes('sink') ? await startS3Sink(tls) : undefined;
  const paced = peers.includes('paced') ? await startS3Sink(tls, { paceMiBps: pace }) : undefined;
  const motoFront = tls && peers.includes('moto') ? await tlsFront(ctx.endpoint, tls) : undefined;
  notes.push(
    `upload: ${tls ? 'https to every store (a TLS front before moto), aws CLIs with payload_signing_enabled = false' : 'plain http (--upload-http): the aws CLIs sign every part'}; s5cmd is not packaged for Debian or npm here (not measured); rclone ${tls ? 'still signs each part (1.60 has no unsigned-payload option)' : 'signs each part'}`,
  );
  try {
    const series: Series[] = [];
    const verdicts: Verdict[] = [];
    for (const [index, bytes] of sizes.entries()) {
      const file = path.join(ctx.tmp, `upload-${bytes}.bin`);
      try {
        log(`upload: writing ${sizeLabel(bytes)} test file`);
        await makeFile(file, bytes);
        for (const peer of peers) {
          const endpoint =
            peer === 'sink'
              ? sink!.endpoint
              : peer === 'paced'
                ? paced!.endpoint
                : (motoFront?.endpoint ?? ctx.endpoint);
          const out = await compareOnPeer(ctx, {
            peer,
            endpoint,
            child,
            file,
            bytes,
            partSize,
            concurrency,
            ourLabel,
            tls,
            pace,
          });
          series.push(...out.series);
          verdicts.push(...out.verdicts);
          notes.push(...out.notes);
          if (index === 0 && peer === peers[0] && ctx.flags.has('tune'))
            series.push(...(await tune(ctx, { peer, endpoint, child, file, bytes, tls })));
        }
      } finally {
        await fs.rm(file, { force: true });
      }
    }
    return { series, verdicts, notes };
  } finally {
    await sink?.stop();
    await paced?.stop();
    await motoFront?.stop();
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
  tls?: BenchTls;
  /** MiB/s of the paced store's link. */
  pace?: number;
}

/** A peer tool: its label and how it uploads a file. */
interface PeerTool {
  name: string;
  run: (file: string, key: string) => Promise<UploadRun>;
}

/** The aws CLIs to compare with: v1 (the PATH's, by its real binary, not the pyenv shim) and v2 (Debian's). */
export function awsClis(flags: ReadonlyMap<string, string>): { name: string; bin: string }[] {
  const out: { name: string; bin: string }[] = [];
  const v1 = peerBinary('aws');
  const version = (bin: string): string =>
    (spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout || '').split(' ')[0].replace('aws-cli/', '');
  const v2 = flags.get('aws-v2') ?? '/usr/bin/aws';
  for (const bin of [v1, existsSync(v2) ? v2 : undefined]) {
    if (!bin || out.some((o) => o.bin === bin)) continue;
    const v = version(bin);
    if (v) out.push({ name: `aws s3 cp (v${v})`, bin });
  }
  return out;
}

/** One uploader per kind, bound to a fresh bucket on one store. */
async function uploaders(
  ctx: BenchContext,
  endpoint: string,
  child: string,
  tls?: BenchTls,
  withPeers = true,
) {
  const bucket = `bench-upload-${randomBytes(4).toString('hex')}`;
  const s3 = new S3Client({
    ...s3ClientConfig({ bucket, region: 'us-east-1', endpoint }),
    // this process trusts the bench's certificate by its own agent (NODE_EXTRA_CA_CERTS is read at start)
    ...(tls ? { requestHandler: { httpsAgent: new HttpsAgent({ ca: tls.cert, keepAlive: true }) } } : {}),
  });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  // configured as against S3: https with unsigned payloads (botocore signs every part over plain http)
  const awsConfig = path.join(ctx.tmp, 'aws-config-upload');
  writeFileSync(awsConfig, AWS_CLI_CONFIG);
  const env = childEnv({
    AWS_CONFIG_FILE: awsConfig,
    ...(tls ? { AWS_CA_BUNDLE: tls.certFile, NODE_EXTRA_CA_CERTS: tls.certFile } : {}),
  });
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
    return { ms: r.ms, peakRssMb: r.peakRssMb ?? out.maxRssMb, innerMs: out.ms, cpuS: r.cpuS };
  };
  const peers: PeerTool[] = (withPeers ? awsClis(ctx.flags) : []).map(({ name, bin }) => ({
    name,
    run: async (file: string, key: string): Promise<UploadRun> => {
      const r = mustSucceed(
        await runProc(
          bin,
          ['s3', 'cp', file, `s3://${bucket}/${key}`, '--endpoint-url', endpoint, '--only-show-errors'],
          { env, measureRss: true },
        ),
        name,
      );
      return { ms: r.ms, peakRssMb: r.peakRssMb, cpuS: r.cpuS };
    },
  }));
  if (withPeers && peers.length === 0) throw new Error('the upload bench needs the aws CLI as its peer');
  // checks the upload landed whole, then frees the store's memory before the next run
  const verifyAndDrop = async (key: string, bytes: number): Promise<void> => {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (head.ContentLength !== bytes)
      throw new Error(`s3://${bucket}/${key} has ${head.ContentLength} bytes, expected ${bytes}`);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  };
  // rclone (Debian package) when installed: its own S3 client, 5 MiB parts x 4 by default, given 8 x 8 as ours
  const rcloneBin = withPeers ? peerBinary('rclone') : undefined;
  if (rcloneBin)
    peers.push({
      name: 'rclone copyto',
      run: async (file: string, key: string): Promise<UploadRun> => {
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
                // aws-sdk-go reads AWS_CA_BUNDLE too and fails on it with rclone's transport
                ...Object.fromEntries(Object.entries(env).filter(([k]) => k !== 'AWS_CA_BUNDLE')),
                RCLONE_CONFIG_BENCH_TYPE: 's3',
                RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
                RCLONE_CONFIG_BENCH_ENDPOINT: endpoint,
                RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID ?? '',
                RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY ?? '',
                RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
                // Go reads extra roots from here (rclone 1.60's --ca-cert fails on the S3 backend)
                ...(tls ? { SSL_CERT_FILE: tls.certFile } : {}),
              },
              measureRss: true,
            },
          ),
          'rclone copyto',
        );
        return { ms: r.ms, peakRssMb: r.peakRssMb, cpuS: r.cpuS };
      },
    });
  return { ours, peers, verifyAndDrop };
}

const PEER_LABEL: Record<Peer, string> = { moto: 'moto', sink: 'checking sink', paced: 'checking sink' };
const storeLabel = (c: { peer: Peer; pace?: number }): string =>
  c.peer === 'paced' ? `checking sink paced at ${c.pace} MiB/s` : PEER_LABEL[c.peer];

async function compareOnPeer(
  ctx: BenchContext,
  c: Comparison,
): Promise<{ series: Series[]; verdicts: Verdict[]; notes: string[] }> {
  // on the paced store only our two paths: every client would go at the link's pace
  const alone = c.peer === 'paced';
  const tools = await uploaders(ctx, c.endpoint, c.child, c.tls, !alone);
  const { ours, verifyAndDrop } = tools;
  const notes: string[] = [];
  const label = sizeLabel(c.bytes);
  const on = `${storeLabel(c)}${c.tls ? ' (https)' : ' (http)'}`;
  const mibps = (ms: number): number => c.bytes / MiB / (ms / 1000);
  const runs = runsOf(ctx, 5);
  const o: UploadRun[] = [];
  const peerRuns = new Map<string, UploadRun[]>(tools.peers.map((p) => [p.name, []]));
  const failed = new Set<string>();
  // train's upload path: the upload with its sha256 from the same read, and (before) a second read to hash
  const shared: UploadRun[] = [];
  const separate: UploadRun[] = [];
  const first = [
    ...tools.peers.map((p) => p.name),
    'ours',
    'shared',
    ...(ctx.flags.has('no-separate') ? [] : ['separate']),
  ];
  const orders = [first, [...first].reverse()];
  // the sink serves from this process: its CPU during a run is this process's (the bench only waits then)
  const storeCpu = async (run: () => Promise<UploadRun>): Promise<UploadRun> => {
    const before = process.cpuUsage();
    const r = await run();
    const used = process.cpuUsage(before);
    return c.peer !== 'moto' ? { ...r, storeCpuS: (used.user + used.system) / 1e6 } : r;
  };
  for (let i = 0; i < runs; i++) {
    // alternate who goes first, so neither always meets a store that just freed memory
    for (const who of orders[i % 2]) {
      const key = `${who.replace(/[^a-z0-9.]+/gi, '-')}/${label.replace(' ', '')}-${i}`;
      const peer = tools.peers.find((p) => p.name === who);
      if (peer) {
        if (failed.has(who)) continue;
        try {
          peerRuns.get(who)!.push(await storeCpu(() => peer.run(c.file, key)));
        } catch (err) {
          // a peer that cannot upload here is reported, not allowed to end the comparison
          const why = ((err as Error).message.match(/(InvalidPart|Error)[^\n]*/) ?? ['failed'])[0];
          notes.push(`upload ${label} to ${on}: ${who} failed (${why.slice(0, 160)}); left out`);
          failed.add(who);
          continue;
        }
      } else if (who === 'ours') o.push(await storeCpu(() => ours(c.file, key, c.partSize, c.concurrency)));
      else {
        const r = await storeCpu(() =>
          ours(c.file, key, c.partSize, c.concurrency, who as 'shared' | 'separate'),
        );
        (who === 'shared' ? shared : separate).push(r);
      }
      await verifyAndDrop(key, c.bytes);
    }
    log(
      `upload ${label} to ${on}, run ${i + 1}/${runs}: ours ${mibps(o[i].ms).toFixed(0)} MiB/s, ` +
        [...peerRuns]
          .filter(([n]) => !failed.has(n))
          .map(([n, r]) => `${n} ${mibps(r[i].ms).toFixed(0)} MiB/s, `)
          .join('') +
        `train's path ${mibps(shared[i].innerMs!).toFixed(0)} MiB/s (uploadFile alone ${mibps(o[i].innerMs!).toFixed(0)})`,
    );
  }
  const live = [...peerRuns].filter(([n]) => !failed.has(n));
  const bench = 'upload';
  const series: Series[] = [
    { bench, name: `${label} to ${on}: ${c.ourLabel}`, unit: 'MiB/s', samples: o.map((r) => mibps(r.ms)) },
    ...live.map(([n, r]) => ({
      bench,
      name: `${label} to ${on}: ${n}`,
      unit: 'MiB/s',
      samples: r.map((x) => mibps(x.ms)),
    })),
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
    ...(separate.length > 0
      ? [
          {
            bench,
            name: `${label} to ${on}: train's path before, uploadFile + a separate sha256 read`,
            unit: 'MiB/s',
            samples: separate.map((r) => mibps(r.innerMs!)),
          },
        ]
      : []),
    {
      bench,
      name: `${label} to ${on}: ours peak RSS`,
      unit: 'MB',
      samples: o.map((r) => r.peakRssMb ?? NaN),
    },
    ...live.map(([n, r]) => ({
      bench,
      name: `${label} to ${on}: ${n} peak RSS`,
      unit: 'MB',
      samples: r.map((x) => x.peakRssMb ?? NaN),
    })),
    ...cpuSeries(`${label} to ${on}`, [
      ['ours', o],
      ["train's path", shared],
      ...live.map(([n, r]): [string, UploadRun[]] => [n, r]),
    ]),
  ];
  // the fastest peer of each paired run
  const fastest = o.map((r, i) => Math.min(...live.map(([, p]) => p[i].ms)) / r.ms);
  const rss = o.map((r) => r.peakRssMb ?? NaN);
  const trainRatio = (runs: UploadRun[]) => runs.map((r, i) => o[i].innerMs! / r.innerMs!);
  const trainVerdict: Verdict = {
    bench,
    name: `${label} to ${on}: train's path (upload + sha256) / uploadFile alone`,
    samples: trainRatio(shared),
    unit: 'x',
    target: '>= 0.95',
    met: median(trainRatio(shared)) >= 0.95,
  };
  if (alone) return { series, verdicts: [trainVerdict], notes };
  const verdicts: Verdict[] = [
    ...live.map(([n, p]) => ({
      bench,
      name: `${label} to ${on}: throughput ours / ${n}`,
      samples: o.map((r, i) => p[i].ms / r.ms),
      unit: 'x',
      target: 'report',
      met: undefined,
    })),
    {
      bench,
      name: `${label} to ${on}: throughput ours / fastest peer (${live.map(([n]) => n).join(', ')})`,
      samples: fastest,
      unit: 'x',
      target: '>= 1',
      met: median(fastest) >= 1,
    },
    {
      bench,
      name: `${label} to ${on}: ours peak RSS`,
      samples: rss,
      unit: 'MB',
      target: '< 300',
      met: Math.max(...rss) < 300,
      note: 'judged on the max',
    },
    trainVerdict,
    ...(separate.length > 0
      ? [
          {
            bench,
            name: `${label} to ${on}: train's path before (separate sha256 read) / uploadFile alone`,
            samples: trainRatio(separate),
            unit: 'x',
            target: 'report',
            met: undefined,
          },
        ]
      : []),
  ];
  return { series, verdicts, notes };
}

/**
 * CPU seconds (user + sys) per run of each uploader and, on the sink, of the sink while it uploaded: on a
 * 2-core machine the sink and the client share the cores, so the sum is what a run can go no faster than.
 */
function cpuSeries(on: string, runs: [string, UploadRun[]][]): Series[] {
  const out: Series[] = [];
  for (const [who, r] of runs) {
    if (r.length > 0 && r.every((x) => x.cpuS !== undefined))
      out.push({
        bench: 'upload',
        name: `${on}: ${who} CPU (user + sys)`,
        unit: 's',
        samples: r.map((x) => x.cpuS!),
      });
    if (r.length > 0 && r.every((x) => x.storeCpuS !== undefined))
      out.push({
        bench: 'upload',
        name: `${on}: the sink's CPU while ${who} uploads`,
        unit: 's',
        samples: r.map((x) => x.storeCpuS!),
      });
  }
  return out;
}

/** --tune: our uploader alone over a grid of part sizes x parts in flight. */
async function tune(ctx: BenchContext, c: Comparison): Promise<Series[]> {
  const { ours, verifyAndDrop } = await uploaders(ctx, c.endpoint, c.child, c.tls);
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
