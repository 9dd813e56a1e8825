import { GetObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { DownloadOptions } from '../../core/ports';
import { Sha256Worker } from '../system/sha256-worker';
import { BatchWriter } from '../system/write-all';
import { isRetryablePartError } from './file-upload';

export interface FileDownloadSettings {
  /** Bytes per ranged GET, at least (the first range is this size: it tells the object's size). */
  partSize: number;
  /**
   * Ranges wanted after the first: a large object gets larger ranges (up to maxPartSize) rather than
   * more requests, as s5cmd's 50 MiB parts; fewer GETs cost less, and a store that reads the whole object
   * for every ranged GET (moto) does that fewer times.
   */
  targetRanges: number;
  maxPartSize: number;
  /** Ranged GETs in flight at once (1: one plain GET streamed to the file). */
  concurrency: number;
  /** Tries per range before the whole download fails (a retry starts the range over). */
  partAttempts: number;
  /** Waits between tries; injectable so tests need not sleep. */
  sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_DOWNLOAD_SETTINGS: FileDownloadSettings = {
  partSize: 8 * 1024 * 1024,
  targetRanges: 64,
  maxPartSize: 64 * 1024 * 1024,
  concurrency: 8,
  partAttempts: 4,
};

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Range {
  start: number;
  end: number;
}

/** Total size from `Content-Range: bytes 0-8388607/1073741824` (or the length of a whole-object answer). */
function totalOf(r: GetObjectCommandOutput): number {
  const m = /\/(\d+)\s*$/.exec(r.ContentRange ?? '');
  if (m) return Number(m[1]);
  if (r.ContentLength === undefined)
    throw new Error('the store sent neither Content-Range nor Content-Length');
  return r.ContentLength;
}

/** Writes a response body at its offset in the file; returns the bytes written (checked by the caller). */
async function writeBody(
  body: Readable,
  fh: FileHandle,
  start: number,
  onBytes: (n: number) => void,
): Promise<number> {
  // socket chunks gathered into MAX_WRITE pieces: few system calls, none of the large ones
  const out = new BatchWriter(fh, start);
  let written = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const n = await out.push(chunk);
    if (n > 0) onBytes(n);
    written += n;
  }
  const n = await out.flush();
  if (n > 0) onBytes(n);
  return written + n;
}

/**
 * Downloads s3://bucket/key into `dest` as parallel ranged GETs written at their offsets (as `aws s3 cp`
 * does). The first range tells the size and ETag; every other range must come from the same ETag (a
 * replaced object fails the download instead of mixing versions). The last range goes second, so a zip
 * reader waiting on `onWritten` gets the central directory early. With `sha256`, each stretch of the file
 * that is complete from byte 0 is hashed on a worker thread as soon as it is written, so the hash is ready
 * right after the last byte.
 */
export async function downloadFileFromS3(
  client: S3Client,
  bucket: string,
  key: string,
  dest: string,
  settings: FileDownloadSettings,
  options: DownloadOptions & { signal?: AbortSignal } = {},
): Promise<{ size: number; sha256?: string }> {
  const sleep = settings.sleep ?? defaultSleep;
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([stop.signal, options.signal]) : stop.signal;
  const fh = await fs.open(dest, 'w');
  const hasher = options.sha256 ? new Sha256Worker() : undefined;
  let received = 0;
  let total = 0;
  const onBytes = (n: number): void => {
    received += n;
    options.onProgress?.(received, Math.max(total, received));
  };
  // ranges complete from byte 0 on are hashed in order; later ones wait for the gap before them
  const written: Range[] = [];
  let hashedTo = 0;
  let hashing: Promise<void> = Promise.resolve();
  const done = (r: Range): void => {
    options.onWritten?.(r.start, r.end);
    if (!hasher) return;
    written.push(r);
    written.sort((a, b) => a.start - b.start);
    while (written.length > 0 && written[0].start === hashedTo) {
      const next = written.shift()!;
      const { start, end } = next;
      hashing = hashing.then(() => hasher.range(dest, start, end));
      hashing.catch(() => undefined); // awaited at the end; not an unhandled rejection meanwhile
      hashedTo = end;
    }
  };

  const get = async (range: Range | undefined, etag: string | undefined): Promise<GetObjectCommandOutput> =>
    client.send(
      new GetObjectCommand({
        Bucket: bucket,
        Key: key,
        Range: range ? `bytes=${range.start}-${range.end - 1}` : undefined,
        IfMatch: etag,
      }),
      { abortSignal: signal },
    );

  /** One range, retried from its start on network and server errors. */
  const fetchRange = async (range: Range, etag: string | undefined): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      let got = 0;
      try {
        const r = await get(range, etag);
        if (etag !== undefined && r.ETag !== undefined && r.ETag !== etag)
          throw Object.assign(new Error(`ETag ${r.ETag}`), { name: 'PreconditionFailed' });
        got = await writeBody(r.Body as Readable, fh, range.start, onBytes);
        if (got !== range.end - range.start)
          throw new Error(`got ${got} bytes for bytes ${range.start}-${range.end - 1}`);
        done(range);
        return;
      } catch (err) {
        received -= got;
        const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
        if (e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 412)
          throw new Error(`the object was replaced during the download (it no longer has ETag ${etag})`, {
            cause: err,
          });
        if (signal.aborted || attempt >= settings.partAttempts || !isRetryablePartError(err)) throw err;
        await sleep(Math.min(200 * 2 ** (attempt - 1), 5000) * (0.5 + Math.random() / 2));
      }
    }
  };

  try {
    if (settings.concurrency <= 1) {
      const r = await get(undefined, undefined);
      total = r.ContentLength ?? 0;
      const got = await writeBody(r.Body as Readable, fh, 0, onBytes);
      total = got;
      done({ start: 0, end: got });
    } else {
      // the first range: size and ETag, and its body is the start of the file
      const first: Range = { start: 0, end: settings.partSize };
      let r: GetObjectCommandOutput;
      try {
        r = await get(first, undefined);
      } catch (err) {
        // an empty object has no byte 0 to ask for
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status !== 416 && (err as Error).name !== 'InvalidRange') throw err;
        r = await get(undefined, undefined);
      }
      total = totalOf(r);
      const etag = r.ETag;
      // a store that ignores Range sends the whole object: take it as it comes
      if (!r.ContentRange) first.end = total;
      first.end = Math.min(first.end, total);
      const wanted =
        Math.ceil((total - first.end) / settings.targetRanges / settings.partSize) * settings.partSize;
      const partSize = Math.max(settings.partSize, Math.min(wanted, settings.maxPartSize));
      const ranges: Range[] = [];
      for (let start = first.end; start < total; start += partSize)
        ranges.push({ start, end: Math.min(start + partSize, total) });
      // the tail (a zip's central directory) right after the head
      if (ranges.length > 1) ranges.unshift(ranges.pop()!);
      const firstBody = (async () => {
        let got = 0;
        try {
          got = await writeBody(r.Body as Readable, fh, 0, (n) => {
            got += n;
            onBytes(n);
          });
          if (got !== first.end) throw new Error(`got ${got} bytes for bytes 0-${first.end - 1}`);
          done(first);
        } catch (err) {
          if (signal.aborted || !isRetryablePartError(err)) throw err;
          received -= got;
          await fetchRange(first, etag);
        }
      })();
      let next = 0;
      const workers = Array.from({ length: Math.min(settings.concurrency - 1, ranges.length) }, async () => {
        while (next < ranges.length && !signal.aborted) await fetchRange(ranges[next++], etag);
      });
      const results = await Promise.allSettled([firstBody, ...workers]);
      const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed) throw failed.reason;
    }
    if (total === 0) options.onProgress?.(0, 0);
    await hashing;
    const sha256 = hasher ? await hasher.digest() : undefined;
    return { size: total, sha256 };
  } catch (err) {
    stop.abort();
    throw err;
  } finally {
    await fh.close();
    await hasher?.close();
  }
}
