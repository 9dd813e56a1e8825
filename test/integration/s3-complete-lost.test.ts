import {
  GetObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { multipartEtag } from '../../src/adapters/aws/complete-upload';
import { s3ClientConfig, S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { motoEndpoint, newBucket } from '../helpers/aws';

/*
 * CompleteMultipartUpload whose answer is lost after the store acted on it (a timeout while moto joins a
 * 4 GiB object, a reset): the SDK's retry finds no upload any more (S3: NoSuchUpload; moto 5.2.1 answers a
 * 500 for a 4 GiB upload, and completes a small one again, so the retry's answer is S3's here).
 * The upload is done, and must be reported done, not failed (and then "aborted", with a warning that its
 * parts stay billed).
 */

const MiB = 1024 * 1024;

function fileOf(size: number, seed: number): { file: string; bytes: Buffer } {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) bytes.writeUInt32BE((i * 2654435761 + seed) >>> 0, i);
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'mp-complete-')), 'model.bin');
  writeFileSync(file, bytes);
  return { file, bytes };
}

/**
 * A store on moto whose client loses the answer of the first CompleteMultipartUpload it sends (`lose`), or
 * whose every CompleteMultipartUpload fails before it reaches moto (`fail`).
 */
async function storeLosingCompleteAnswer(checksums: boolean, mode: 'lose' | 'fail' = 'lose') {
  const bucket = await newBucket('complete');
  const client = new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: motoEndpoint() }));
  const completes: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'CompleteMultipartUploadCommand') return next(args);
      if (mode === 'fail') {
        completes.push('InternalError');
        throw Object.assign(new Error('We encountered an internal error'), {
          name: 'InternalError',
          $metadata: { httpStatusCode: 500 },
        });
      }
      if (completes.length > 0) {
        // a retry after the upload was completed: what S3 answers (moto answers 500 for a 4 GiB upload)
        completes.push('NoSuchUpload');
        throw Object.assign(new Error('The specified upload does not exist.'), {
          name: 'NoSuchUpload',
          $metadata: { httpStatusCode: 404 },
        });
      }
      const r = await next(args).then(
        (out) => ({ ok: true as const, out }),
        (err: unknown) => ({ ok: false as const, err }),
      );
      completes.push(r.ok ? 'done' : String((r.err as Error).name));
      // the store acted on the first try; its answer never arrives
      if (completes.length === 1) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      if (!r.ok) throw r.err;
      return r.out;
    },
    { step: 'finalizeRequest', priority: 'low' },
  );
  const store = new S3ObjectStore(
    {
      bucket,
      region: 'us-east-1',
      endpoint: motoEndpoint(),
      upload: { partSize: 5 * MiB, concurrency: 2, partAttempts: 2, checksums, sleep: async () => undefined },
    },
    client,
  );
  return { store, client, bucket, completes };
}

describe('a CompleteMultipartUpload whose answer is lost', () => {
  it.each([
    ['with CRC32 checksums', true],
    ['without checksums (S3-compatible stores): by the multipart ETag', false],
  ])('is found done by the object it made (%s)', async (_label, checksums) => {
    const { file, bytes } = fileOf(2 * 5 * MiB + 123, checksums ? 1 : 2);
    const s = await storeLosingCompleteAnswer(checksums);
    const r = await s.store.uploadFile('m/model.zip', file, { sha256: true });
    expect(s.completes[0]).toBe('done'); // the first try completed the upload
    expect(s.completes.slice(1)).toEqual(['NoSuchUpload']); // and the SDK tried again, in vain
    expect(r.size).toBe(bytes.length);
    expect(r.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    if (checksums) expect(r.checksum).toMatchObject({ algorithm: 'CRC32', type: 'COMPOSITE' });
    const got = await s.client.send(new GetObjectCommand({ Bucket: s.bucket, Key: 'm/model.zip' }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(bytes)).toBe(true);
    expect(r.etag).toBe(got.ETag);
    const open = await s.client.send(new ListMultipartUploadsCommand({ Bucket: s.bucket }));
    expect(open.Uploads ?? []).toEqual([]);
  });

  it('still fails when the object at the key is another one (same size, other bytes)', async () => {
    const { file, bytes } = fileOf(2 * 5 * MiB + 123, 3);
    const s = await storeLosingCompleteAnswer(false, 'fail');
    // the key keeps an older object of the same size: not the upload's
    const other = Buffer.from(bytes);
    other[0] ^= 0xff;
    await s.client.send(new PutObjectCommand({ Bucket: s.bucket, Key: 'm/model.zip', Body: other }));
    await expect(s.store.uploadFile('m/model.zip', file)).rejects.toThrow(/internal error/);
    const open = await s.client.send(new ListMultipartUploadsCommand({ Bucket: s.bucket }));
    expect(open.Uploads ?? []).toEqual([]); // aborted: no parts left billed
  });

  it('computes the multipart ETag as S3 and moto do', () => {
    const parts: CompletedPart[] = [
      { PartNumber: 1, ETag: '"' + createHash('md5').update('a').digest('hex') + '"' },
      { PartNumber: 2, ETag: '"' + createHash('md5').update('b').digest('hex') + '"' },
    ];
    const md5s = Buffer.concat([
      createHash('md5').update('a').digest(),
      createHash('md5').update('b').digest(),
    ]);
    expect(multipartEtag(parts)).toBe(`"${createHash('md5').update(md5s).digest('hex')}-2"`);
  });
});
