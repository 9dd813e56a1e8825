import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { S3ObjectStore, s3ClientConfig } from '../src/adapters/aws/s3-store';
import { MemoryState } from '../src/adapters/system/console-logger';
import type { Logger } from '../src/core/ports';
import { buildContext, findCommand } from '../src/runner';
import { TempRepo } from '../test/helpers/git-repo';
import { sha256 } from '../test/helpers/models';
import {
  FAKE_AWS_ENV,
  log,
  removeAtEnd,
  median,
  nowMs,
  parallel,
  runsOf,
  type BenchContext,
  type BenchOutput,
  type Series,
  type Verdict,
} from './lib';

const quiet: Logger = {
  info: () => undefined,
  warn: (m) => log(`rotate warning: ${m}`),
  error: (m) => log(`rotate error: ${m}`),
  debug: () => undefined,
  mask: () => undefined,
  group: (_t, fn) => fn(),
};

const KEEP_PER_VERSION = 3;
const ROOT = 'models';

/**
 * Counts every HTTP attempt the client makes, by command. The deserialize step sits inside the retry loop,
 * so a retried request counts each time it goes over the wire.
 */
function countRequests(client: S3Client): Map<string, number> {
  const counts = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? 'unknown';
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: 'deserialize', name: 'benchRequestCounter' },
  );
  return counts;
}

interface Layout {
  folders: { folder: string; version: string; sha7: string }[];
  perFolder: number;
  total: number;
  expectKept: number;
}

function layout(objects: number, prefixes: number): Layout {
  const perFolder = Math.max(2, Math.floor(objects / prefixes));
  // ~100 folders per version: keep-per-version keeps a few of each, the rest are candidates
  const versions = Math.max(1, Math.round(prefixes / 100));
  const seen = new Set<string>();
  const folders: Layout['folders'] = [];
  for (let i = 0; i < prefixes; i++) {
    let sha7: string;
    do sha7 = randomBytes(4).toString('hex').slice(0, 7);
    while (seen.has(sha7));
    seen.add(sha7);
    const version = `1.${i % versions}.0`;
    folders.push({ folder: `${ROOT}/${version}-${sha7}/`, version, sha7 });
  }
  const perVersion = new Map<string, number>();
  for (const f of folders) perVersion.set(f.version, (perVersion.get(f.version) ?? 0) + 1);
  let expectKept = 0;
  for (const n of perVersion.values()) expectKept += Math.min(KEEP_PER_VERSION, n);
  return { folders, perFolder, total: perFolder * prefixes, expectKept };
}

/** Model folders of a branch that is gone, none promoted: everything but the newest few per version goes. */
async function populate(s3: S3Client, bucket: string, l: Layout): Promise<number> {
  const puts: { key: string; body: Buffer | string }[] = [];
  for (const f of l.folders) {
    const model = Buffer.from(`model ${f.folder}`);
    const manifest = {
      schemaVersion: 1,
      model: { name: 'search', version: f.version, sha: f.sha7.padEnd(40, '0') },
      files: [{ name: 'model.zip', size: model.length, sha256: sha256(model) }],
      git: { sha: f.sha7.padEnd(40, '0'), branch: 'gone' },
      build: { backend: 'local', startedAt: '2024-01-01T00:00:00Z', finishedAt: '2024-01-01T01:00:00Z' },
    };
    puts.push({ key: `${f.folder}model.zip`, body: model });
    for (let j = 0; j < l.perFolder - 2; j++)
      puts.push({ key: `${f.folder}shards/part-${String(j).padStart(4, '0')}.bin`, body: 'x' });
    // the manifest last, as train writes it
    puts.push({ key: `${f.folder}manifest.json`, body: JSON.stringify(manifest) });
  }
  const t0 = nowMs();
  await parallel(puts, 32, async (p) => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: p.key, Body: p.body }));
  });
  return nowMs() - t0;
}

export async function rotate(ctx: BenchContext): Promise<BenchOutput> {
  const objects = Number(ctx.flags.get('rotate-objects') ?? (ctx.smoke ? 2000 : 100_000));
  const prefixes = Number(ctx.flags.get('rotate-prefixes') ?? (ctx.smoke ? 20 : 1000));
  const runs = runsOf(ctx, 3);
  const repo = new TempRepo('mp-bench-rotate-');
  removeAtEnd(repo.dir);
  repo.write('README.md', 'bench');
  repo.commit('main');

  const wall: number[] = [];
  const requests: number[] = [];
  const ratio: number[] = [];
  const populateMs: number[] = [];
  const byCommand = new Map<string, number[]>();
  let bound = 0;
  let lastLayout: Layout | undefined;
  for (let run = 0; run < runs; run++) {
    const l = layout(objects, prefixes);
    lastLayout = l;
    const bucket = `bench-rotate-${randomBytes(4).toString('hex')}`;
    const admin = new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: ctx.endpoint }));
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    log(`rotate run ${run + 1}/${runs}: writing ${l.total} objects in ${prefixes} model folders`);
    const pMs = await populate(admin, bucket, l);
    populateMs.push(pMs);
    log(`rotate: populated in ${(pMs / 1000).toFixed(1)} s (${Math.round(l.total / (pMs / 1000))} puts/s)`);

    const client = new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: ctx.endpoint }));
    const counts = countRequests(client);
    const store = new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: ctx.endpoint }, client);
    const cmd = findCommand('rotate');
    // runCommand's own steps (find, build context, run), with the store swapped for the counting one
    const t0 = nowMs();
    const context = await buildContext(cmd, {
      command: 'rotate',
      inputs: {
        backend: 'aws',
        bucket,
        's3-endpoint': ctx.endpoint,
        region: 'us-east-1',
        'store-prefix': ROOT,
        'dry-run': 'false',
        'grace-days': '0',
        'keep-per-version': String(KEEP_PER_VERSION),
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

    const deletedFolders = Number(result.outputs['delete-count']);
    const deletedObjects = Number(result.outputs['deleted-objects']);
    const expectDeleted = prefixes - l.expectKept;
    if (deletedFolders !== expectDeleted || deletedObjects !== expectDeleted * l.perFolder)
      throw new Error(
        `rotate deleted ${deletedFolders} folders / ${deletedObjects} objects, expected ${expectDeleted} / ${expectDeleted * l.perFolder}`,
      );
    let left = 0;
    for await (const o of new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: ctx.endpoint }).list(''))
      if (o.key !== undefined) left++;
    if (left !== l.expectKept * l.perFolder)
      throw new Error(`after rotation ${left} objects are left, expected ${l.expectKept * l.perFolder}`);

    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    bound = Math.ceil(l.total / 1000) + Math.ceil(deletedObjects / 1000);
    wall.push(ms);
    requests.push(total);
    ratio.push(total / bound);
    for (const [name, n] of counts) byCommand.set(name, [...(byCommand.get(name) ?? []), n]);
    log(
      `rotate: ${(ms / 1000).toFixed(2)} s, ${total} requests (${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')}), lower bound ${bound}`,
    );
  }

  const l = lastLayout!;
  const bench = 'rotate';
  const scale = `${l.total} objects / ${prefixes} prefixes`;
  const series: Series[] = [
    {
      bench,
      name: `${scale}: populate (PutObject x32, not rotate)`,
      unit: 's',
      samples: populateMs.map((m) => m / 1000),
    },
    { bench, name: `${scale}: rotate wall time`, unit: 's', samples: wall.map((m) => m / 1000) },
    { bench, name: `${scale}: S3 requests`, unit: 'req', samples: requests },
    ...[...byCommand].map(([name, n]) => ({ bench, name: `  of which ${name}`, unit: 'req', samples: n })),
  ];
  const verdicts: Verdict[] = [
    {
      bench,
      name: `requests / lower bound (${bound} = ceil(N/1000) list + ceil(deleted/1000) delete)`,
      samples: ratio,
      unit: 'x',
      target: '~1 (report)',
      met: undefined,
      note: `median ${median(requests)} requests`,
    },
  ];
  return { series, verdicts, notes: [] };
}
