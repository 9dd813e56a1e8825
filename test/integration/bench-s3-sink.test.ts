import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startS3Sink, type S3Sink } from '../../bench/s3-sink';
import { compositeCrc32 } from '../../src/adapters/aws/file-upload';
import { s3ClientConfig, S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { crc32Of } from '../helpers/aws'; // also sets fake credentials for the SDK

// The upload benchmark's verdict on the sink is only as good as the sink's checks, so they are tested here.

const MiB = 1024 * 1024;

/** A 12 MiB file of counting words (no two parts alike) and a store sending it to the sink in 5 MiB parts. */
function twelveMiB(dir: string, endpoint: string, bucket: string, concurrency?: number) {
  const bytes = Buffer.alloc(12 * MiB);
  for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32BE(i, i);
  const file = path.join(dir, 'twelve.bin');
  writeFileSync(file, bytes);
  const store = new S3ObjectStore({
    bucket,
    region: 'us-east-1',
    endpoint,
    upload: { partSize: 5 * MiB, concurrency },
  });
  return { bytes, file, store };
}

describe('bench S3 sink', () => {
  let sink: S3Sink;
  let dir: string;
  let client: S3Client;
  const bucket = 'sink-test';

  beforeAll(async () => {
    sink = await startS3Sink();
    dir = mkdtempSync(path.join(tmpdir(), 'mp-sink-'));
    client = new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: sink.endpoint }));
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  });
  afterAll(async () => {
    client.destroy();
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes a multipart upload from S3ObjectStore and keeps its size and composite CRC32', async () => {
    const { bytes, file, store } = twelveMiB(dir, sink.endpoint, bucket);

    await store.uploadFile('m/three-parts.bin', file);

    const parts = [bytes.subarray(0, 5 * MiB), bytes.subarray(5 * MiB, 10 * MiB), bytes.subarray(10 * MiB)];
    expect(sink.objects.get(`${bucket}/m/three-parts.bin`)).toMatchObject({
      size: bytes.length,
      checksumCrc32: compositeCrc32(parts.map(crc32Of)),
    });
  });

  it('refuses a part whose CRC32 header does not match its bytes, and a part list it did not receive', async () => {
    const { UploadId } = await client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'bad', ChecksumAlgorithm: 'CRC32' }),
    );
    const body = Buffer.alloc(5 * MiB, 7);
    const part = { Bucket: bucket, Key: 'bad', UploadId, PartNumber: 1, Body: body };

    await expect(
      client.send(new UploadPartCommand({ ...part, ChecksumCRC32: crc32Of(Buffer.from('other bytes')) })),
    ).rejects.toMatchObject({ name: 'BadDigest' });

    const ok = await client.send(new UploadPartCommand({ ...part, ChecksumCRC32: crc32Of(body) }));
    const complete = (Parts: { PartNumber: number; ETag?: string }[]) =>
      client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: 'bad',
          UploadId,
          MultipartUpload: { Parts },
        }),
      );
    await expect(complete([{ PartNumber: 1, ETag: '"not-its-etag"' }])).rejects.toMatchObject({
      name: 'InvalidPart',
    });
    await expect(
      complete([
        { PartNumber: 1, ETag: ok.ETag },
        { PartNumber: 2, ETag: ok.ETag },
      ]),
    ).rejects.toMatchObject({ name: 'InvalidPart' });
    expect(sink.objects.has(`${bucket}/bad`)).toBe(false);
  });

  it('refuses a part smaller than 5 MiB unless it is the last one', async () => {
    const { UploadId } = await client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'small' }),
    );
    const send = (PartNumber: number, size: number) =>
      client.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: 'small',
          UploadId,
          PartNumber,
          Body: Buffer.alloc(size, 1),
        }),
      );
    const one = await send(1, MiB);
    const two = await send(2, MiB);

    await expect(
      client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: 'small',
          UploadId,
          MultipartUpload: {
            Parts: [
              { PartNumber: 1, ETag: one.ETag },
              { PartNumber: 2, ETag: two.ETag },
            ],
          },
        }),
      ),
    ).rejects.toMatchObject({ name: 'EntityTooSmall' });
  });
});

describe('bench S3 sink paced like a network link', () => {
  it('takes every connection together no faster than its pace, and whole', async () => {
    const sink = await startS3Sink(undefined, { paceMiBps: 16 });
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-sink-paced-'));
    const bucket = 'paced';
    try {
      const { bytes, file, store } = twelveMiB(dir, sink.endpoint, bucket, 3);
      const started = performance.now();
      await store.uploadFile('m/twelve.bin', file);
      const seconds = (performance.now() - started) / 1000;
      // 12 MiB over a 16 MiB/s link, three parts at once: at least about 0.75 s, not 3 x 16 MiB/s
      expect(seconds).toBeGreaterThan(0.6);
      expect(sink.objects.get(`${bucket}/m/twelve.bin`)?.size).toBe(bytes.length);
    } finally {
      await sink.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
