import { constants as fsc, promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as yauzl from 'yauzl';
import {
  planExtraction,
  type ArchiveLimits,
  type PlannedEntry,
  type RawArchiveEntry,
} from '../../core/archive';
import { PipelineError } from '../../core/errors';
import type { Archives } from '../../core/ports';

/** O_NOFOLLOW where the platform has it (not on Windows, where O_EXCL alone refuses an existing name). */
const NEW_FILE = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | (fsc.O_NOFOLLOW ?? 0);

async function open(zipFile: string): Promise<yauzl.ZipFile> {
  try {
    // names decoded here, not by yauzl, so a bad name is reported with the others instead of ending the read
    return await yauzl.openPromise(zipFile, {
      decodeStrings: false,
      validateEntrySizes: true,
      autoClose: false,
    });
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

  async extract(
    zipFile: string,
    destDir: string,
    options: { limits?: Partial<ArchiveLimits>; signal?: AbortSignal } = {},
  ): Promise<PlannedEntry[]> {
    const zip = await open(zipFile);
    try {
      const entries = await readAll(zip, zipFile);
      const plan = planExtraction(entries.map(rawOf), zip.fileSize, options.limits);
      const root = path.resolve(destDir);
      const made = new Set<string>([root]);
      for (let i = 0; i < plan.length; i++) {
        options.signal?.throwIfAborted();
        const p = plan[i];
        if (p.kind === 'directory') {
          await ensureDir(root, p.path, made);
          continue;
        }
        const parent = path.posix.dirname(p.path);
        if (parent !== '.') await ensureDir(root, parent, made);
        const file = path.join(root, ...p.path.split('/'));
        const handle = await fs.open(file, NEW_FILE, p.mode);
        try {
          const source = await zip.openReadStreamPromise(entries[i]);
          // yauzl checks the bytes against the declared size: a lying entry fails here, it never fills the disk
          for await (const chunk of source as AsyncIterable<Buffer>) {
            if (options.signal?.aborted) {
              source.destroy();
              options.signal.throwIfAborted();
            }
            for (let off = 0; off < chunk.length;) off += (await handle.write(chunk, off)).bytesWritten;
          }
          await handle.chmod(p.mode);
        } catch (err) {
          if (options.signal?.aborted) throw err;
          throw new PipelineError(`cannot unpack ${JSON.stringify(p.path)}: ${(err as Error).message}`);
        } finally {
          await handle.close();
        }
      }
      return plan;
    } finally {
      zip.close();
    }
  }
}
