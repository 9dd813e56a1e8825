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
import { completeUpload, sameCompositeChecksum } from './complete-upload';
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
/**
 * A buffered part goes to the socket in slices of this size. One 8 MiB write makes node's TLS layer
 * encrypt it all into freshly allocated memory before any of it is sent, and join it with the empty write
 * that ends the request into an 8 MiB ArrayBuffer, whose external memory makes V8 run a full GC every few
 * parts. 1 MiB slices cut our CPU per GiB on https by about a fifth and peak RSS by 50 MB.
 */
const WRITE_SLICE = 1024 * 1024;
/**
 * The first and last slices of a part are this small: node's TLS layer copies a write that goes out
 * together with another (the request's headers before the first slice, the empty write that ends it after
 * the last) into one new buffer, so only these small slices are copied, not a quarter of every part.
 */
const EDGE_SLICE = 64 * 1024;

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
  options: { sha256?: boolean; signal?: AbortSignal } = {},
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
  const buffered = partsFitBudget(plan.parts, settings);
  // one thread reads buffered parts, sums their CRC32 and hashes them (or, for streamed parts, hashes the file)
  const reader = options.sha256 || (buffered && settings.checksums) ? new Sha256Worker() : undefined;
  let done: CompleteMultipartUploadCommandOutput;
  let sha256: string | undefined;
  let expected: string | undefined;
  try {
    const target = { bucket, key, uploadId, file, fh };
    const hash = Boolean(options.sha256);
    // the command's signal stops the parts in flight and the senders too (each part passes its own signal)
    const signal = options.signal ? AbortSignal.any([stop.signal, options.signal]) : stop.signal;
    const completed = await uploadParts(
      client,
      target,
      plan.parts,
      settings,
      { stop, signal },
      { buffered, reader, hash },
    );
    if (hash) sha256 = await reader!.digest();
    // S3 checked each part's CRC32 as it arrived, so the object's checksum is the composite of them
    expected = settings.checksums ? compositeCrc32(completed.map((p) => p.ChecksumCRC32!)) : undefined;
    done = await completeUpload(
      client,
      { Bucket: bucket, Key: key, UploadId: uploadId, Parts: completed },
      { size, compositeCrc32: expected },
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
    await reader?.close();
  }
  let checksum: StoredObject['checksum'];
  if (expected) {
    if (done.ChecksumCRC32 && !sameCompositeChecksum(done.ChecksumCRC32, expected))
      throw new Error(
        `S3 reports checksum ${done.ChecksumCRC32} for the object, but the parts sent add up to ${expected}`,
      );
    // recorded with its `-<parts>` suffix, as S3 reports it (some compatible stores leave it out)
    checksum = { algorithm: 'CRC32', type: 'COMPOSITE', value: expected, partSize: plan.parts[0].length };
  }
  return { size, etag: done.ETag, versionId: done.VersionId, checksum, sha256 };
}

/** Parts in flight x part size within the buffer budget: each part is read once into a reused buffer. */
function partsFitBudget(parts: PartRange[], settings: FileUploadSettings): boolean {
  const workers = Math.max(1, Math.min(settings.concurrency, parts.length));
  return workers * parts[0].length <= settings.partBufferBudget;
}

/** A sender's part buffer, reused from part to part; none when parts are streamed. */
interface BufferSlot {
  buffer?: Buffer;
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

/** How parts are read: into buffers (by the reading thread when there is one), else streamed from disk. */
interface PartReading {
  buffered: boolean;
  /** The thread that reads buffered parts, sums and hashes them; hashes the whole file for streamed parts. */
  reader?: Sha256Worker;
  /** sha256 of the file wanted (from the reader). */
  hash: boolean;
}

/** The bytes as a stream of slices of the same memory (no copy): EDGE_SLICE, WRITE_SLICEs, EDGE_SLICE. */
export function sliceStream(bytes: Buffer): Readable {
  const tail = Math.max(bytes.length - EDGE_SLICE, EDGE_SLICE);
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= bytes.length) {
        this.push(null);
        return;
      }
      let end = offset === 0 ? EDGE_SLICE : Math.min(offset + WRITE_SLICE, tail);
      if (offset >= tail) end = bytes.length;
      end = Math.min(end, bytes.length);
      this.push(bytes.subarray(offset, end));
      offset = end;
    },
  });
}

/**
 * The part read once into `buffer`. The body is a stream over the buffer, not the buffer itself: the SDK
 * would hash a buffer body with SHA-256 to sign it, which S3 does not need (the CRC32 covers the bytes).
 * With a reading thread, the part is read, summed and (with `seq`) hashed there in one pass, off the event
 * loop, which encrypts what is sent; the read is asked for before this function first awaits, so parts
 * taken in file order reach the thread in file order.
 */
async function bufferedPart(
  target: UploadTarget,
  part: PartRange,
  buffer: Buffer,
  checksums: boolean,
  reader?: Sha256Worker,
  seq?: number,
): Promise<PartBody> {
  const bytes = buffer.subarray(0, part.length);
  let checksum: string | undefined;
  if (reader) {
    const sum = await reader.readPart(target.file, bytes, part.start, { crc: checksums, seq });
    if (checksums) checksum = crc32Base64(sum);
  } else {
    await readFully(target.fh, bytes, part.start);
    if (checksums) checksum = crc32Base64(crc32(bytes));
  }
  return { body: sliceStream(bytes), checksum };
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

/** Runs `settings.concurrency` senders over the parts; the first failure stops the others taking more. */
async function uploadParts(
  client: S3Client,
  target: UploadTarget,
  parts: PartRange[],
  settings: FileUploadSettings,
  abort: { stop: AbortController; signal: AbortSignal },
  reading: PartReading,
): Promise<CompletedPart[]> {
  const completed: CompletedPart[] = new Array<CompletedPart>(parts.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const workers = Math.max(1, Math.min(settings.concurrency, parts.length));
  const partSize = parts[0].length; // only the last part may be shorter
  const total = parts.reduce((n, p) => n + p.length, 0);
  let stored = 0;
  const { buffered, reader } = reading;
  // streamed parts leave the reading thread to read the whole file for its sha256
  const wholeFile = reading.hash && !buffered ? reader!.file(target.file) : undefined;
  wholeFile?.catch(() => undefined); // awaited below unless the upload fails first
  const alloc = (n: number): Buffer => (reader ? sharedBuffer(n) : Buffer.allocUnsafeSlow(n));
  const worker = async (): Promise<void> => {
    const slot: BufferSlot = { buffer: buffered ? alloc(partSize) : undefined };
    while (!failure && next < parts.length) {
      const part = parts[next++];
      try {
        abort.signal.throwIfAborted();
        completed[part.number - 1] = await uploadPart(client, target, part, slot, settings, abort.signal, {
          alloc,
          reader: buffered ? reader : undefined,
          hash: reading.hash && buffered,
        });
        stored += part.length;
        settings.onProgress?.(stored, total);
      } catch (err) {
        failure ??= { err };
        abort.stop.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  if (failure) throw failure.err;
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
  buffers: { alloc: (size: number) => Buffer; reader?: Sha256Worker; hash: boolean },
): Promise<CompletedPart> {
  const sleep = settings.sleep ?? defaultSleep;
  for (let attempt = 1; ; attempt++) {
    // read per try: a retry must send the bytes on disk, from a fresh stream; the first read is the one
    // hashed (its part number is its place in the file's sha256), a retry reads into another buffer (below)
    const seq = buffers.hash && attempt === 1 ? part.number : undefined;
    const { body, checksum } = slot.buffer
      ? await bufferedPart(target, part, slot.buffer, settings.checksums, buffers.reader, seq)
      : await streamedPart(target, part, settings.checksums);
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
