import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompleteMultipartUploadCommandOutput,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createReadStream, promises as fs } from 'node:fs';
import { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { completeUpload } from './complete-upload';
import { planParts, type PartRange } from '../../core/multipart';
import type { StoredObject } from '../../core/ports';
import { sharedBuffer, Sha256Worker } from '../system/sha256-worker';
import { createHash } from 'node:crypto';

export interface FileUploadSettings {
  /** Wanted part size in bytes; files up to this size go in one PutObject. */
  partSize: number;
  /** Parts in flight at once. */
  concurrency: number;
  /** Tries per part before the whole upload fails (a part is re-read from disk on each try). */
  partAttempts: number;
  /** Send CRC32 checksums S3 verifies per part; off for S3-compatible stores that reject them. */
  checksums: boolean;
  /**
   * Bytes of part buffers one upload may hold. While parts in flight x part size fits, each part is read
   * once into a reused buffer; beyond it (very large files have large parts) parts are streamed from disk,
   * which costs a second read for the checksum and almost twice the CPU per byte, but no buffers.
   */
  partBufferBudget: number;
  /** Waits between part tries; injectable so tests need not sleep. */
  sleep?: (ms: number) => Promise<void>;
  /** Bytes stored so far of the file's size, after each part (and once for a single PutObject). */
  onProgress?: (done: number, total: number) => void;
}

export const DEFAULT_UPLOAD_SETTINGS: FileUploadSettings = {
  partSize: 8 * 1024 * 1024,
  concurrency: 8,
  partAttempts: 4,
  checksums: true,
  partBufferBudget: 128 * 1024 * 1024,
};

const READ_CHUNK = 1024 * 1024;

function crc32Base64(value: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b.toString('base64');
}

/** Fills `into` with the file's bytes from `position` on; a file that ends first has shrunk under us. */
async function readFully(fh: FileHandle, into: Buffer, position: number): Promise<void> {
  for (let done = 0; done < into.length;) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0)
      throw new Error(`the file shrank while it was being uploaded (at byte ${position + done})`);
    done += bytesRead;
  }
}

/** CRC32 of bytes [start, start+length) of an open file, read a chunk at a time. */
async function rangeCrc32(fh: FileHandle, range: PartRange): Promise<string> {
  const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK, range.length));
  let value = 0;
  for (let done = 0; done < range.length;) {
    const bytes = chunk.subarray(0, Math.min(chunk.length, range.length - done));
    await readFully(fh, bytes, range.start + done);
    value = crc32(bytes, value);
    done += bytes.length;
  }
  return crc32Base64(value);
}

/**
 * S3's checksum of a multipart object: the CRC32 of the parts' CRC32s, then `-<parts>`. Comparing it with
 * what S3 reports proves the object is the parts we sent, in order.
 */
export function compositeCrc32(partChecksums: string[]): string {
  const joined = Buffer.concat(partChecksums.map((c) => Buffer.from(c, 'base64')));
  return `${crc32Base64(crc32(joined))}-${partChecksums.length}`;
}

/** Some S3-compatible stores report a composite checksum without its `-<parts>` suffix. */
export function sameCompositeChecksum(reported: string, expected: string): boolean {
  const [value, parts] = reported.split('-');
  const [wantValue, wantParts] = expected.split('-');
  return value === wantValue && (parts === undefined || parts === wantParts);
}

/** Network failures, throttling and server errors are worth another try; a refused request is not. */
export function isRetryablePartError(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  if (e?.name === 'AbortError') return false;
  if (e?.$retryable) return true;
  const status = e?.$metadata?.httpStatusCode;
  if (status === undefined) return true;
  return status >= 500 || status === 408 || status === 429 || e?.name === 'RequestTimeout';
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Uploads a file to s3://bucket/key. Large files go up as a multipart upload: each part is read from its
 * own range of the file into a reused buffer (the file is never held in memory: one buffer per part in
 * flight, within `partBufferBudget`, else the part is streamed), carries a CRC32 that S3 checks, and is
 * re-read from disk and retried on network and server errors. On failure the multipart upload is
 * aborted, so no invisible parts are left to be billed.
 */
export async function uploadFileToS3(
  client: S3Client,
  bucket: string,
  key: string,
  file: string,
  settings: FileUploadSettings,
  options: { sha256?: boolean } = {},
): Promise<StoredObject & { sha256?: string }> {
  const { size } = await fs.stat(file);
  const plan = planParts(size, settings.partSize);
  if (plan.parts.length <= 1) {
    const body = await fs.readFile(file);
    const sha256 = options.sha256 ? createHash('sha256').update(body).digest('hex') : undefined;
    const sent = settings.checksums ? crc32Base64(crc32(body)) : undefined;
    const r = await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        ChecksumAlgorithm: settings.checksums ? 'CRC32' : undefined,
        ChecksumCRC32: sent,
      }),
    );
    settings.onProgress?.(body.length, body.length);
    // S3 refuses a body whose CRC32 differs from the header, so the header is what it keeps
    const value = r.ChecksumCRC32 ?? sent;
    return {
      size: body.length,
      etag: r.ETag,
      versionId: r.VersionId,
      checksum: value ? { algorithm: 'CRC32', type: 'FULL_OBJECT', value } : undefined,
      sha256,
    };
  }

  const created = await client.send(
    new CreateMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      ChecksumAlgorithm: settings.checksums ? 'CRC32' : undefined,
    }),
  );
  const uploadId = created.UploadId!;
  const fh = await fs.open(file, 'r');
  const stop = new AbortController();
  const hasher = options.sha256 ? new Sha256Worker() : undefined;
  let completed: CompletedPart[];
  let done: CompleteMultipartUploadCommandOutput;
  let sha256: string | undefined;
  try {
    const target = { bucket, key, uploadId, file, fh };
    completed = await uploadParts(client, target, plan.parts, settings, stop, hasher);
    if (hasher) sha256 = await hasher.digest();
    done = await completeUpload(
      client,
      { Bucket: bucket, Key: key, UploadId: uploadId, Parts: completed },
      {
        size,
        compositeCrc32: settings.checksums
          ? compositeCrc32(completed.map((p) => p.ChecksumCRC32!))
          : undefined,
      },
    );
  } catch (err) {
    stop.abort();
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
      .catch((abortErr: unknown) => {
        throw new Error(
          `${(err as Error).message}; aborting multipart upload ${uploadId} also failed ` +
            `(${(abortErr as Error).message}): its parts stay billed until removed ` +
            `(aws s3api abort-multipart-upload, or a lifecycle rule with AbortIncompleteMultipartUpload)`,
          { cause: err },
        );
      });
    throw err;
  } finally {
    await fh.close();
    await hasher?.close();
  }
  let checksum: StoredObject['checksum'];
  if (settings.checksums) {
    // S3 checked each part's CRC32 as it arrived, so the object's checksum is the composite of them
    const expected = compositeCrc32(completed.map((p) => p.ChecksumCRC32!));
    if (done.ChecksumCRC32 && !sameCompositeChecksum(done.ChecksumCRC32, expected))
      throw new Error(
        `S3 reports checksum ${done.ChecksumCRC32} for the object, but the parts sent add up to ${expected}`,
      );
    // recorded with its `-<parts>` suffix, as S3 reports it (some compatible stores leave it out)
    checksum = { algorithm: 'CRC32', type: 'COMPOSITE', value: expected, partSize: plan.parts[0].length };
  }
  return { size, etag: done.ETag, versionId: done.VersionId, checksum, sha256 };
}

/** A worker's part buffer, reused from part to part; none when parts are streamed. */
interface BufferSlot {
  buffer?: Buffer;
  /** Resolves when the hashing thread is done with the part last read into `buffer`. */
  hashed?: Promise<void>;
}

/**
 * Feeds parts to the hashing thread in file order, whatever order they are read in: a part read early
 * waits here (in its buffer) for the parts before it. Each part's promise resolves when its bytes are
 * hashed, so its buffer can take the next part.
 */
class OrderedHash {
  private next = 1;
  private readonly waiting = new Map<number, { bytes: Buffer; done: (p: Promise<void>) => void }>();
  constructor(private readonly hasher: Sha256Worker) {}

  add(partNumber: number, bytes: Buffer): Promise<void> {
    const result = new Promise<Promise<void>>((done) => this.waiting.set(partNumber, { bytes, done }));
    for (let w = this.waiting.get(this.next); w; w = this.waiting.get(this.next)) {
      this.waiting.delete(this.next++);
      w.done(this.hasher.update(w.bytes));
    }
    return result.then((p) => p);
  }
}

interface UploadTarget {
  bucket: string;
  key: string;
  uploadId: string;
  file: string;
  fh: FileHandle;
}

interface PartBody {
  body: Readable;
  checksum?: string;
}

/**
 * The part read once into `buffer`. The body is a stream over the buffer, not the buffer itself: the SDK
 * would hash a buffer body with SHA-256 to sign it, which S3 does not need (the CRC32 covers the bytes).
 */
async function bufferedPart(
  fh: FileHandle,
  part: PartRange,
  buffer: Buffer,
  checksums: boolean,
): Promise<PartBody> {
  const bytes = buffer.subarray(0, part.length);
  await readFully(fh, bytes, part.start);
  return {
    body: Readable.from([bytes], { objectMode: false }),
    checksum: checksums ? crc32Base64(crc32(bytes)) : undefined,
  };
}

/** The part streamed from disk, after a first read for its checksum. */
async function streamedPart(target: UploadTarget, part: PartRange, checksums: boolean): Promise<PartBody> {
  const checksum = checksums ? await rangeCrc32(target.fh, part) : undefined;
  const body = createReadStream(target.file, {
    start: part.start,
    end: part.start + part.length - 1,
    highWaterMark: READ_CHUNK,
  });
  return { body, checksum };
}

/** Runs `settings.concurrency` workers over the parts; the first failure stops the others taking more. */
async function uploadParts(
  client: S3Client,
  target: UploadTarget,
  parts: PartRange[],
  settings: FileUploadSettings,
  stop: AbortController,
  hasher?: Sha256Worker,
): Promise<CompletedPart[]> {
  const completed: CompletedPart[] = new Array<CompletedPart>(parts.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const workers = Math.max(1, Math.min(settings.concurrency, parts.length));
  const partSize = parts[0].length; // only the last part may be shorter
  const total = parts.reduce((n, p) => n + p.length, 0);
  let stored = 0;
  const buffered = workers * partSize <= settings.partBufferBudget;
  // parts in buffers are hashed from them (one read per byte); streamed parts leave the worker to read the file
  const ordered = hasher && buffered ? new OrderedHash(hasher) : undefined;
  const wholeFile = hasher && !buffered ? hasher.file(target.file) : undefined;
  wholeFile?.catch(() => undefined); // awaited below unless the upload fails first
  const hashes: Promise<void>[] = [];
  const alloc = (n: number): Buffer => (ordered ? sharedBuffer(n) : Buffer.allocUnsafeSlow(n));
  const worker = async (): Promise<void> => {
    const slot: BufferSlot = { buffer: buffered ? alloc(partSize) : undefined };
    while (!failure && next < parts.length) {
      const part = parts[next++];
      try {
        await slot.hashed; // the buffer's last part must be hashed before it is overwritten
        const onRead = ordered
          ? (bytes: Buffer) => {
              slot.hashed = ordered.add(part.number, bytes);
              slot.hashed.catch(() => undefined); // a failed upload may leave it rejected, unawaited
              hashes.push(slot.hashed);
            }
          : undefined;
        completed[part.number - 1] = await uploadPart(client, target, part, slot, settings, stop.signal, {
          alloc,
          onRead,
        });
        stored += part.length;
        settings.onProgress?.(stored, total);
      } catch (err) {
        failure ??= { err };
        stop.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  if (failure) throw failure.err;
  await Promise.all(hashes);
  await wholeFile;
  return completed;
}

async function uploadPart(
  client: S3Client,
  target: UploadTarget,
  part: PartRange,
  slot: BufferSlot,
  settings: FileUploadSettings,
  signal: AbortSignal,
  buffers: { alloc: (size: number) => Buffer; onRead?: (bytes: Buffer) => void },
): Promise<CompletedPart> {
  const sleep = settings.sleep ?? defaultSleep;
  for (let attempt = 1; ; attempt++) {
    // read per try: a retry must send the bytes on disk, from a fresh stream
    const { body, checksum } = slot.buffer
      ? await bufferedPart(target.fh, part, slot.buffer, settings.checksums)
      : await streamedPart(target, part, settings.checksums);
    // the first read is the one hashed: a retry reads into another buffer (below)
    if (attempt === 1 && slot.buffer) buffers.onRead?.(slot.buffer.subarray(0, part.length));
    try {
      const r = await client.send(
        new UploadPartCommand({
          Bucket: target.bucket,
          Key: target.key,
          UploadId: target.uploadId,
          PartNumber: part.number,
          Body: body,
          ContentLength: part.length,
          ChecksumCRC32: checksum,
        }),
        { abortSignal: signal },
      );
      return { PartNumber: part.number, ETag: r.ETag, ChecksumCRC32: checksum };
    } catch (err) {
      if (signal.aborted || attempt >= settings.partAttempts || !isRetryablePartError(err)) {
        const reason = (err as Error).message || (err as Error).name;
        throw Object.assign(
          new Error(
            `part ${part.number} failed after ${attempt} ${attempt === 1 ? 'try' : 'tries'}: ${reason}`,
            { cause: err },
          ),
          {
            name: (err as Error).name,
            $metadata: (err as { $metadata?: unknown }).$metadata,
          },
        );
      }
      // the failed request may still be writing from the buffer: the next try reads into a new one
      if (slot.buffer) slot.buffer = buffers.alloc(slot.buffer.length);
      await sleep(Math.min(200 * 2 ** (attempt - 1), 5000) * (0.5 + Math.random() / 2));
    } finally {
      body.destroy();
    }
  }
}
