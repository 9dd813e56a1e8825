import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startS3Files, type S3Files } from '../../bench/s3-files';
import { s3ClientConfig, S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { PreconditionFailedError } from '../../src/core/errors';
import '../helpers/aws'; // fake credentials for the SDK

// The fetch-model benchmark's plain file server: only as good as its answers, so they are tested here.

describe('bench plain file server (S3 GETs from files)', () => {
  let files: S3Files;
  let root: string;
  const bytes = Buffer.alloc(3 * 1024 * 1024 + 11);
  for (let i = 0; i + 4 <= bytes.length; i += 4) bytes.writeUInt32BE(i >>> 2, i);

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'mp-s3files-'));
    mkdirSync(path.join(root, 'b', 'models', 'm'), { recursive: true });
    writeFileSync(path.join(root, 'b', 'models', 'm', 'model.zip'), bytes);
    writeFileSync(path.join(root, 'b', 'models', 'm', 'manifest.json'), '{}');
    files = await startS3Files(root);
  });
  afterAll(async () => {
    await files.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const client = () =>
    new S3Client(s3ClientConfig({ bucket: 'b', region: 'us-east-1', endpoint: files.endpoint }));

  it('serves ranged GETs with Content-Range and the ETag, and whole objects', async () => {
    const c = client();
    const r = await c.send(
      new GetObjectCommand({ Bucket: 'b', Key: 'models/m/model.zip', Range: 'bytes=100-199' }),
    );
    expect(r.ContentRange).toBe(`bytes 100-199/${bytes.length}`);
    expect(Buffer.from(await r.Body!.transformToByteArray()).equals(bytes.subarray(100, 200))).toBe(true);
    const head = await c.send(new HeadObjectCommand({ Bucket: 'b', Key: 'models/m/model.zip' }));
    expect(head.ContentLength).toBe(bytes.length);
    expect(head.ETag).toBe(r.ETag);
    await expect(
      c.send(new GetObjectCommand({ Bucket: 'b', Key: 'models/m/model.zip', IfMatch: '"other"' })),
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 412 } });
  });

  it('is a store S3ObjectStore can download from, list and write create-only records to', async () => {
    const store = new S3ObjectStore({
      bucket: 'b',
      region: 'us-east-1',
      endpoint: files.endpoint,
      download: { partSize: 256 * 1024 },
    });
    const dest = path.join(root, 'out.zip');
    const got = await store.downloadFile('models/m/model.zip', dest, { sha256: true });
    expect(got).toEqual({ size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    expect(readFileSync(dest).equals(bytes)).toBe(true);
    const keys: string[] = [];
    for await (const o of store.list('models/')) keys.push(o.key);
    expect(keys).toEqual(['models/m/manifest.json', 'models/m/model.zip']);
    expect(await store.listPrefixes('models/')).toEqual(['models/m/']);
    await store.put('models/_registry/record.json', 'one', { ifNoneMatch: true });
    await expect(
      store.put('models/_registry/record.json', 'two', { ifNoneMatch: true }),
    ).rejects.toBeInstanceOf(PreconditionFailedError);
    expect((await store.get('models/_registry/record.json'))?.body.toString()).toBe('one');
    expect(await store.get('models/none')).toBeUndefined();
  });
});
