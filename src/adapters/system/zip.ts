import { constants as fsc, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import * as yauzl from 'yauzl';
import {
  planExtraction,
  type ArchiveLimits,
  type PlannedEntry,
  type RawArchiveEntry,
} from '../../core/archive';
import { PipelineError } from '../../core/errors';
import type { Archives, ExtractOptions } from '../../core/ports';
import { BatchWriter, MAX_WRITE } from './write-all';

/** O_NOFOLLOW where the platform has it (not on Windows, where O_EXCL alone refuses an existing name). */
const NEW_FILE = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | (fsc.O_NOFOLLOW ?? 0);

const ZIP_OPTIONS = {
  // names decoded here, not by yauzl, so a bad name is reported with the others instead of ending the read
  decodeStrings: false,
  validateEntrySizes: true,
  autoClose: false,
} as const;

/** Read size of a file still arriving: each read waits only for its own bytes. */
const ARRIVING_CHUNK = 1024 * 1024;

/**
 * yauzl's random access over a file a download is still writing: each range is read a chunk at a time,
 * each chunk once its bytes are there, so an entry is inflated as the download brings it.
 */
class ArrivingFileReader extends yauzl.RandomAccessReader {
  private handle: Promise<FileHandle> | undefined;

  constructor(
    private readonly file: string,
    private readonly arriving: NonNullable<ExtractOptions['arriving']>,
  ) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const chunks = async function* (this: ArrivingFileReader): AsyncGenerator<Buffer> {
      for (let pos = start; pos < end;) {
        const length = Math.min(ARRIVING_CHUNK, end - pos);
        await this.arriving.ready(pos, pos + length);
        const fh = await (this.handle ??= fs.open(this.file, 'r'));
        const buf = Buffer.allocUnsafe(length);
        for (let got = 0; got < length;) {
          const { bytesRead } = await fh.read(buf, got, length - got, pos + got);
          if (bytesRead === 0) throw new Error(`the file ends before byte ${pos + got}`);
          got += bytesRead;
        }
        yield buf;
        pos += length;
      }
    };
    return Readable.from(chunks.call(this), { objectMode: false });
  }

  override close(callback: (err: Error | null) => void): void {
    if (!this.handle) return void setImmediate(() => callback(null));
    this.handle
      .then((h) => h.close())
      .then(
        () => callback(null),
        (err: Error) => callback(err),
      );
  }
}

async function open(zipFile: string, arriving?: ExtractOptions['arriving']): Promise<yauzl.ZipFile> {
  try {
    if (arriving)
      return await yauzl.fromRandomAccessReaderPromise(
        new ArrivingFileReader(zipFile, arriving),
        arriving.size,
        ZIP_OPTIONS,
      );
    return await yauzl.openPromise(zipFile, ZIP_OPTIONS);
  } catch (err) {
    throw new PipelineError(
      `${path.basename(zipFile)} is not a readable zip archive: ${(err as Error).message}`,
    );
  }
}

function rawOf(e: yauzl.Entry): RawArchiveEntry {
  const raw = e.fileNameRaw ?? (e.fileName as unknown as Buffer);
  const name = yauzl.getFileNameLowLevel(e.generalPurposeBitFlag, raw, e.extraFields, true);
  const headerName = yauzl.getFileNameLowLevel(e.generalPurposeBitFlag, raw, [], true);
  return {
    name,
    ...(headerName !== name ? { altNames: [headerName] } : {}),
    madeBy: e.versionMadeBy >> 8,
    externalAttributes: e.externalFileAttributes,
    compressionMethod: e.compressionMethod,
    encrypted: e.isEncrypted(),
    compressedSize: e.compressedSize,
    uncompressedSize: e.uncompressedSize,
    localHeaderOffset: e.relativeOffsetOfLocalHeader,
  };
}

async function readAll(zip: yauzl.ZipFile, zipFile: string): Promise<yauzl.Entry[]> {
  const out: yauzl.Entry[] = [];
  try {
    for await (const e of zip.eachEntry()) out.push(e);
  } catch (err) {
    throw new PipelineError(
      `${path.basename(zipFile)} is not a readable zip archive: ${(err as Error).message}`,
    );
  }
  return out;
}

/** Creates root/rel folder by folder, refusing any part that exists as anything but a real folder. */
async function ensureDir(root: string, rel: string, made: Set<string>): Promise<void> {
  let cur = root;
  for (const part of rel.split('/')) {
    cur = path.join(cur, part);
    if (made.has(cur)) continue;
    try {
      await fs.mkdir(cur, { mode: 0o755 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await fs.lstat(cur);
      if (!st.isDirectory())
        throw new PipelineError(`${cur} exists and is not a folder; refusing to write through it`);
    }
    await fs.chmod(cur, 0o755);
    made.add(cur);
  }
}

/**
 * Zip archives read with yauzl (maintained, pure JavaScript, no system unzip): the central directory is
 * checked whole by core/archive.ts, then each entry is streamed into a file this process creates.
 */
export class ZipArchives implements Archives {
  async inspect(zipFile: string, limits?: Partial<ArchiveLimits>): Promise<PlannedEntry[]> {
    const zip = await open(zipFile);
    try {
      return planExtraction((await readAll(zip, zipFile)).map(rawOf), zip.fileSize, limits);
    } finally {
      zip.close();
    }
  }

  async extract(zipFile: string, destDir: string, options: ExtractOptions = {}): Promise<PlannedEntry[]> {
    const zip = await open(zipFile, options.arriving);
    try {
      const entries = await readAll(zip, zipFile);
      const plan = planExtraction(entries.map(rawOf), zip.fileSize, options.limits);
      const root = path.resolve(destDir);
      const made = new Set<string>([root]);
      const files: number[] = [];
      for (let i = 0; i < plan.length; i++) {
        options.signal?.throwIfAborted();
        if (plan[i].kind === 'directory') await ensureDir(root, plan[i].path, made);
        else files.push(i);
      }
      // a few entries at once: inflating runs on libuv's threads, so each entry in flight can use a core
      const stop = new AbortController();
      const signal = options.signal ? AbortSignal.any([stop.signal, options.signal]) : stop.signal;
      let next = 0;
      let cause: { err: unknown } | undefined;
      const unpackNext = async (): Promise<void> => {
        while (next < files.length && !signal.aborted) {
          const i = files[next++];
          try {
            await unpackFile(zip, entries[i], plan[i], root, made, signal);
          } catch (err) {
            // the first failure is the cause; the others were stopped because of it
            cause ??= { err };
            stop.abort();
            throw err;
          }
        }
      };
      const workers = Array.from({ length: Math.min(options.concurrency ?? 4, files.length) }, unpackNext);
      await Promise.allSettled(workers);
      options.signal?.throwIfAborted();
      if (cause) throw cause.err;
      return plan;
    } finally {
      zip.close();
    }
  }
}

async function unpackFile(
  zip: yauzl.ZipFile,
  entry: yauzl.Entry,
  p: PlannedEntry,
  root: string,
  made: Set<string>,
  signal: AbortSignal,
): Promise<void> {
  const parent = path.posix.dirname(p.path);
  if (parent !== '.') await ensureDir(root, parent, made);
  const file = path.join(root, ...p.path.split('/'));
  const handle = await fs.open(file, NEW_FILE, p.mode);
  try {
    // the stored bytes from yauzl (which checks their count), inflated here in large chunks
    const deflated = entry.compressionMethod === 8;
    const raw = await zip.openReadStreamPromise(entry, deflated ? { decompress: false } : {});
    const source: Readable = deflated ? raw.pipe(createInflateRaw({ chunkSize: MAX_WRITE })) : raw;
    raw.on('error', (err) => source.destroy(err));
    // written in MAX_WRITE pieces: few system calls, none of the large ones that cost more per byte
    const out = new BatchWriter(handle);
    let total = 0;
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        signal.throwIfAborted();
        total += chunk.length;
        // a lying entry fails here, at its declared size: it never fills the disk
        if (total > p.size) throw new Error(`too many bytes in the stream: more than its size, ${p.size}`);
        await out.push(chunk);
      }
      await out.flush();
      if (total !== p.size)
        throw new Error(`not enough bytes in the stream: ${total} of its size, ${p.size}`);
    } finally {
      source.destroy();
      raw.destroy();
    }
    await handle.chmod(p.mode);
  } catch (err) {
    if (signal.aborted) throw err;
    throw new PipelineError(`cannot unpack ${JSON.stringify(p.path)}: ${(err as Error).message}`);
  } finally {
    await handle.close();
  }
}
