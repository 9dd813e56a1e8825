import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
  type UploadPartCommandInput,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtempSync, ReadStream, truncateSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { startS3Sink } from '../../bench/s3-sink';
import { compositeCrc32, type FileUploadSettings } from '../../src/adapters/aws/file-upload';
import { s3ClientConfig, S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { bindAbortSignal } from '../../src/adapters/aws/client-config';
import { compareStored } from '../../src/core/gates';
import { crc32Of, motoEndpoint, newBucket } from '../helpers/aws';

const MiB = 1024 * 1024;
const PART = 5 * MiB;

/** Bytes that differ in every part, so a part sent twice or out of order changes the object. */
function fileOf(size: number): { file: string; bytes: Buffer } {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) bytes.writeUInt32BE(i >>> 2, i);
  for (let i = size - (size % 4); i < size; i++) bytes[i] = i & 0xff;
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'mp-upload-')), 'model.bin');
  writeFileSync(file, bytes);
  return { file, bytes };
}

type Fault = (input: UploadPartCommandInput, attempt: number, body: Readable) => Promise<void>;

/**
 * An S3ObjectStore on moto whose client runs `fault` just before each UploadPart goes on the wire, with
 * the part's try number; it throws to simulate what the network or S3 would do. `upload` overrides the
 * small parts and quick retries set here; `signal` is the command's abort signal, bound as in production.
 */
async function storeWithFault(fault?: Fault, upload: Partial<FileUploadSettings> = {}, signal?: AbortSignal) {
  const bucket = await newBucket('upload');
  const client = bindAbortSignal(
    new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: motoEndpoint() })),
    signal,
  );
  const tries = new Map<number, number>();
  const sleeps: number[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UploadPartCommand') {
        const input = args.input as UploadPartCommandInput;
        const n = (tries.get(input.PartNumber!) ?? 0) + 1;
        tries.set(input.PartNumber!, n);
        const request = args.request as { body: Readable; headers: Record<string, string> };
        await fault?.(input, n, request.body);
      }
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low' },
  );
  const store = new S3ObjectStore(
    {
      bucket,
      region: 'us-east-1',
      endpoint: motoEndpoint(),
      signal,
      upload: {
        partSize: PART,
        concurrency: 2,
        partAttempts: 3,
        sleep: async (ms) => void sleeps.push(ms),
        ...upload,
      },
    },
    client,
  );
  // checks go through a client of their own, which the command's signal does not stop
  const admin = new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: motoEndpoint() }));
  const openUploads = async (): Promise<number> =>
    (await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads?.length ?? 0;
  const download = async (key: string): Promise<Buffer> => {
    const r = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await r.Body!.transformToByteArray());
  };
  return { store, client, bucket, tries, sleeps, openUploads, download };
}

const networkDrop = (): Error => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

describe('S3ObjectStore.uploadFile (moto_server)', () => {
  it('sends a file of at most one part in one PutObject with its CRC32', async () => {
    const { file, bytes } = fileOf(PART);
    const s = await storeWithFault();
    await s.store.uploadFile('m/small.bin', file);
    expect(s.tries.size).toBe(0);
    const head = await s.client.send(
      new HeadObjectCommand({ Bucket: s.bucket, Key: 'm/small.bin', ChecksumMode: 'ENABLED' }),
    );
    expect(head.ChecksumCRC32).toBe(crc32Of(bytes));
    expect((await s.download('m/small.bin')).equals(bytes)).toBe(true);
  });

  it('hashes a one-part file too', async () => {
    const s = await storeWithFault();
    const { file, bytes } = fileOf(1000);
    const r = await s.store.uploadFile('m/small.bin', file, { sha256: true });
    expect(r.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('uploads empty files', async () => {
    const { file } = fileOf(0);
    const s = await storeWithFault();
    expect((await s.store.uploadFile('m/empty', file)).size).toBe(0);
    expect((await s.download('m/empty')).length).toBe(0);
  });

  it('sends no checksum headers when checksums are off', async () => {
    const { file, bytes } = fileOf(PART + 3);
    const sent: string[] = [];
    const s = await storeWithFault(undefined, { checksums: false });
    s.client.middlewareStack.add(
      (next) => async (args) => {
        const headers = (args.request as { headers: Record<string, string> }).headers;
        sent.push(...Object.keys(headers).filter((h) => /checksum/i.test(h)));
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low' },
    );
    await s.store.uploadFile('m/plain.bin', file);
    expect(sent).toEqual([]);
    expect((await s.download('m/plain.bin')).equals(bytes)).toBe(true);
  });

  it('gives up on a part after its tries, aborts the upload and leaves no object and no parts', async () => {
    const { file } = fileOf(3 * PART);
    const s = await storeWithFault(async (input) => {
      if (input.PartNumber === 2) throw networkDrop();
    });
    await expect(s.store.uploadFile('m/model.bin', file)).rejects.toThrow(
      /uploading .*model\.bin to s3:\/\/.*\/m\/model\.bin: part 2 failed after 3 tries: socket hang up/,
    );
    expect(s.tries.get(2)).toBe(3);
    expect(s.tries.get(3) ?? 0).toBeLessThanOrEqual(1);
    expect(await s.openUploads()).toBe(0);
    await expect(
      s.client.send(new HeadObjectCommand({ Bucket: s.bucket, Key: 'm/model.bin' })),
    ).rejects.toThrow();
  });

  it('does not retry what S3 refused, and says why', async () => {
    const { file } = fileOf(2 * PART);
    const s = await storeWithFault(async (input) => {
      if (input.PartNumber === 1)
        throw Object.assign(new Error('Access Denied'), {
          name: 'AccessDenied',
          $metadata: { httpStatusCode: 403 },
        });
    });
    await expect(s.store.uploadFile('m/model.bin', file)).rejects.toThrow(/access denied by AWS.*iam-policy/);
    expect(s.tries.get(1)).toBe(1);
    expect(await s.openUploads()).toBe(0);
  });

  it('fails when S3 reports a different checksum for the finished object than the parts add up to', async () => {
    const { file } = fileOf(2 * PART);
    const s = await storeWithFault();
    s.client.middlewareStack.add(
      (next, context) => async (args) => {
        const r = await next(args);
        if (context.commandName === 'CompleteMultipartUploadCommand')
          (r.output as { ChecksumCRC32?: string }).ChecksumCRC32 = 'AAAAAA==-2';
        return r;
      },
      { step: 'initialize' },
    );
    await expect(s.store.uploadFile('m/model.bin', file)).rejects.toThrow(
      /S3 reports checksum AAAAAA==-2 for the object, but the parts sent add up to .+-2/,
    );
  });

  it('sends the parts over kept-alive connections, not a new connection per part', async () => {
    // a TCP relay counts the connections the client opens to a server that keeps them alive (moto's does
    // not: it closes each after one response), the bench's checking S3 sink
    const sink = await startS3Sink();
    const { hostname, port } = new URL(sink.endpoint);
    const sockets = new Set<Socket>();
    let opened = 0;
    const relay = createServer((socket) => {
      opened++;
      const upstream = connect(Number(port), hostname);
      sockets.add(socket).add(upstream);
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    try {
      const bucket = 'keep-alive';
      const endpoint = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
      const store = new S3ObjectStore({
        bucket,
        region: 'us-east-1',
        endpoint,
        upload: { partSize: PART, concurrency: 2 },
      });
      const { file } = fileOf(8 * PART);
      await store.uploadFile('m/model.bin', file);
      // 8 parts, 2 in flight (plus create and complete): the SDK's Expect: 100-continue took a new one per part
      expect(opened).toBeLessThanOrEqual(3);
      store.client.destroy();
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => relay.close(resolve));
      await sink.stop();
    }
  });

  it('keeps the default 8 MiB parts for settings given as undefined', async () => {
    const { file, bytes } = fileOf(8 * MiB + 1);
    const s = await storeWithFault(undefined, { partSize: undefined, concurrency: undefined });
    await s.store.uploadFile('m/model.bin', file);
    expect([...s.tries.keys()].sort()).toEqual([1, 2]);
    expect((await s.download('m/model.bin')).equals(bytes)).toBe(true);
  });
});

// Parts are read into reused buffers while they fit partBufferBudget, and streamed from disk beyond it.
describe.each([
  ['read into reused buffers', {}, false],
  ['streamed from disk', { partBufferBudget: 0 }, true],
] as const)('S3ObjectStore.uploadFile, parts %s (moto_server)', (_how, reading, streamed) => {
  it('sends a large file as ranged parts, each with its CRC32, and the object is the file', async () => {
    const { file, bytes } = fileOf(2 * PART + 17);
    const s = await storeWithFault(undefined, reading);
    const r = await s.store.uploadFile('m/model.bin', file);
    expect(r.size).toBe(bytes.length);
    expect([...s.tries.entries()].sort()).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
    ]);
    expect((await s.download('m/model.bin')).equals(bytes)).toBe(true);
    const head = await s.client.send(
      new HeadObjectCommand({ Bucket: s.bucket, Key: 'm/model.bin', ChecksumMode: 'ENABLED' }),
    );
    const partCrcs = [0, 1, 2].map((i) => crc32Of(bytes.subarray(i * PART, (i + 1) * PART)));
    // moto leaves out the `-3` suffix real S3 adds
    expect(head.ChecksumCRC32?.replace(/-3$/, '')).toBe(compositeCrc32(partCrcs).replace(/-3$/, ''));
    expect(await s.openUploads()).toBe(0);
  });

  it('re-reads a part from disk when its connection drops half-way, and the object is still the file', async () => {
    const { file, bytes } = fileOf(2 * PART + 17);
    const s = await storeWithFault(async (input, n, body) => {
      if (input.PartNumber === 2 && n === 1) {
        // the first chunk goes out, then the connection drops: the stream is used up
        for await (const chunk of body) {
          void chunk;
          break;
        }
        throw networkDrop();
      }
    }, reading);
    await s.store.uploadFile('m/model.bin', file);
    expect(s.tries.get(2)).toBe(2);
    expect(s.sleeps).toHaveLength(1);
    expect((await s.download('m/model.bin')).equals(bytes)).toBe(true);
    expect(await s.openUploads()).toBe(0);
  });

  it('hashes (sha256) the bytes it sends from the same read, also when a part is sent again', async () => {
    const { file, bytes } = fileOf(5 * PART + 1001);
    const s = await storeWithFault(async (input, n) => {
      if (input.PartNumber === 2 && n === 1) throw networkDrop();
    }, reading);
    const r = await s.store.uploadFile('m/model.bin', file, { sha256: true });
    expect(r.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(s.tries.get(2)).toBe(2);
    expect((await s.download('m/model.bin')).equals(bytes)).toBe(true);
    // without the option there is no hash (and no hashing thread)
    expect((await s.store.uploadFile('m/other.bin', file)).sha256).toBeUndefined();
  });

  it('sends each part the way its budget allows', async () => {
    const { file } = fileOf(2 * PART);
    const bodies: boolean[] = [];
    const s = await storeWithFault(
      async (_input, _n, body) => void bodies.push(body instanceof ReadStream),
      reading,
    );
    await s.store.uploadFile('m/model.bin', file);
    expect(bodies).toEqual([streamed, streamed]);
  });

  it('stops sending parts when the command is stopped, and aborts the multipart upload', async () => {
    const { file } = fileOf(6 * PART);
    const stop = new AbortController();
    const s = await storeWithFault(
      async (input) => {
        if (input.PartNumber === 2) stop.abort();
      },
      { ...reading, concurrency: 1 },
      stop.signal,
    );
    await expect(s.store.uploadFile('m/model.bin', file)).rejects.toThrow(/abort/i);
    // part 2 goes no further than the wire's door, and no part after it is sent
    expect([...s.tries.keys()].sort()).toEqual([1, 2]);
    expect(await s.openUploads()).toBe(0);
  });

  it('stops, aborts the upload and says so when the file shrinks under it', async () => {
    const { file } = fileOf(3 * PART);
    const s = await storeWithFault(
      async (input, n) => {
        if (input.PartNumber === 1 && n === 1) truncateSync(file, PART + 10);
      },
      { ...reading, concurrency: 1 },
    );
    await expect(s.store.uploadFile('m/model.bin', file)).rejects.toThrow(
      /the file shrank while it was being uploaded \(at byte \d+\)/,
    );
    expect(await s.openUploads()).toBe(0);
  });

  it('returns the composite CRC32 with its part size, and HeadObject tells a replacement apart', async () => {
    const s = await storeWithFault();
    const { file, bytes } = fileOf(2 * PART + 123);
    const up = await s.store.uploadFile('m/model.bin', file);
    expect(up.checksum).toEqual({
      algorithm: 'CRC32',
      type: 'COMPOSITE',
      value: compositeCrc32([
        crc32Of(bytes.subarray(0, PART)),
        crc32Of(bytes.subarray(PART, 2 * PART)),
        crc32Of(bytes.subarray(2 * PART)),
      ]),
      partSize: PART,
    });
    expect(up.etag).toMatch(/-3"$/);
    expect(compareStored('model.bin', up, await s.store.stat('m/model.bin'))).toEqual({ verdict: 'same' });
    bytes[PART + 7] ^= 1;
    writeFileSync(file, bytes);
    await s.store.uploadFile('m/model.bin', file);
    const v = compareStored('model.bin', up, await s.store.stat('m/model.bin'));
    expect(v).toMatchObject({ verdict: 'changed', problem: expect.stringMatching(/it was replaced/) });
  });
});
