import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { s3ClientConfig, S3ObjectStore } from '../../src/adapters/aws/s3-store';
import type { FileDownloadSettings } from '../../src/adapters/aws/file-download';
import { motoEndpoint, newBucket } from '../helpers/aws';

const KiB = 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Bytes that differ in every range, so a range written at the wrong offset changes the file. */
function bytesOf(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) bytes.writeUInt32BE(i >>> 2, i);
  return bytes;
}

/**
 * A store on moto with small ranges, and a client whose GetObject calls can be watched (and made to
 * change the object between ranges).
 */
async function store(
  download: Partial<FileDownloadSettings> = {},
  beforeGet?: (range: string) => Promise<void>,
) {
  const bucket = await newBucket('download');
  const client = new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: motoEndpoint() }));
  const ranges: string[] = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { Range?: string };
      if ('Range' in input || (args.request as { method?: string }).method === 'GET') {
        ranges.push(input.Range ?? 'whole');
        await beforeGet?.(input.Range ?? 'whole');
      }
      return next(args);
    },
    { step: 'build', name: 'watchGets' },
  );
  const s = new S3ObjectStore(
    {
      bucket,
      region: 'us-east-1',
      endpoint: motoEndpoint(),
      download: { partSize: 64 * KiB, concurrency: 4, ...download },
    },
    client,
  );
  return { s, client, bucket, ranges, dir: mkdtempSync(path.join(tmpdir(), 'mp-download-')) };
}

describe('S3ObjectStore.downloadFile: parallel ranged GETs, hashed as they arrive', () => {
  it('writes every range at its offset, hashes the whole file in order and reports what it wrote', async () => {
    const { s, dir, ranges } = await store();
    const bytes = bytesOf(1024 * KiB + 17);
    await s.put('m/model.zip', bytes);
    const written: [number, number][] = [];
    const progress: number[] = [];
    const r = await s.downloadFile('m/model.zip', path.join(dir, 'model.zip'), {
      sha256: true,
      onWritten: (a, b) => written.push([a, b]),
      onProgress: (done) => progress.push(done),
    });
    expect(r).toEqual({ size: bytes.length, sha256: sha(bytes) });
    expect(readFileSync(path.join(dir, 'model.zip')).equals(bytes)).toBe(true);
    // 17 ranges of 64 KiB: the head first, the tail second (a zip's central directory), each once
    expect(ranges).toHaveLength(17);
    expect(ranges.slice(0, 2)).toEqual(['bytes=0-65535', `bytes=${16 * 64 * KiB}-${bytes.length - 1}`]);
    expect(new Set(ranges).size).toBe(17);
    const covered = written.sort((a, b) => a[0] - b[0]);
    expect(covered[0][0]).toBe(0);
    for (let i = 1; i < covered.length; i++) expect(covered[i][0]).toBe(covered[i - 1][1]);
    expect(covered.at(-1)![1]).toBe(bytes.length);
    expect(progress.at(-1)).toBe(bytes.length);
  });

  it('a large object takes larger ranges, not more requests (up to the largest range)', async () => {
    const { s, dir, ranges } = await store({ targetRanges: 4, maxPartSize: 1024 * KiB });
    const bytes = bytesOf(1024 * KiB + 17);
    await s.put('m/model.zip', bytes);
    expect((await s.downloadFile('m/model.zip', path.join(dir, 'model.zip'), { sha256: true })).sha256).toBe(
      sha(bytes),
    );
    // the 64 KiB head, then the other 960 KiB + 17 in 4 ranges of 256 KiB (whole head-sized steps)
    expect(ranges).toEqual([
      'bytes=0-65535',
      `bytes=${64 * KiB + 3 * 256 * KiB}-${bytes.length - 1}`,
      `bytes=${64 * KiB}-${64 * KiB + 256 * KiB - 1}`,
      `bytes=${64 * KiB + 256 * KiB}-${64 * KiB + 512 * KiB - 1}`,
      `bytes=${64 * KiB + 512 * KiB}-${64 * KiB + 768 * KiB - 1}`,
    ]);
    const { s: capped, ranges: cappedRanges } = await store({ targetRanges: 1, maxPartSize: 128 * KiB });
    await capped.put('m/model.zip', bytes);
    await capped.downloadFile('m/model.zip', path.join(dir, 'capped.zip'));
    expect(cappedRanges).toHaveLength(1 + Math.ceil((bytes.length - 64 * KiB) / (128 * KiB)));
  });

  it('small and empty objects: one GET each, hashed', async () => {
    const { s, dir } = await store();
    await s.put('m/small', 'tiny');
    await s.put('m/empty', '');
    expect(await s.downloadFile('m/small', path.join(dir, 'small'), { sha256: true })).toEqual({
      size: 4,
      sha256: sha(Buffer.from('tiny')),
    });
    expect(readFileSync(path.join(dir, 'small'), 'utf8')).toBe('tiny');
    expect(await s.downloadFile('m/empty', path.join(dir, 'empty'), { sha256: true })).toEqual({
      size: 0,
      sha256: sha(Buffer.alloc(0)),
    });
    await expect(s.downloadFile('m/none', path.join(dir, 'none'))).rejects.toThrow(/does not exist/);
  });

  it('an object replaced between ranges fails the download instead of mixing two versions', async () => {
    let replaced = false;
    const ctx = await store({ concurrency: 2 }, async (range) => {
      if (replaced || range === 'bytes=0-65535') return;
      replaced = true;
      await ctx.client.send(
        new PutObjectCommand({
          Bucket: ctx.bucket,
          Key: 'm/model.zip',
          Body: bytesOf(512 * KiB).fill(1, 0, 10),
        }),
      );
    });
    await ctx.s.put('m/model.zip', bytesOf(512 * KiB));
    await expect(
      ctx.s.downloadFile('m/model.zip', path.join(ctx.dir, 'model.zip'), { sha256: true }),
    ).rejects.toThrow(/was replaced during the download/);
  });

  it('one plain GET when concurrency is 1', async () => {
    const { s, dir, ranges } = await store({ concurrency: 1 });
    const bytes = bytesOf(300 * KiB);
    await s.put('m/model.zip', bytes);
    expect(await s.downloadFile('m/model.zip', path.join(dir, 'model.zip'), { sha256: true })).toEqual({
      size: bytes.length,
      sha256: sha(bytes),
    });
    expect(ranges).toEqual(['whole']);
  });
});
