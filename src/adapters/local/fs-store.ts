import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, createReadStream, createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MAX_WRITE } from '../system/write-all';
import { PreconditionFailedError, UserError } from '../../core/errors';
import type {
  DownloadOptions,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoredObject,
  TransferProgress,
  UploadOptions,
} from '../../core/ports';

/** Work files live here, inside the store root, so renames stay on one filesystem; never listed. */
const TMP_DIR = '.mp-tmp';
const STALE_LOCK_MS = 30_000;

function etagOf(body: Buffer): string {
  return `"${createHash('md5').update(body).digest('hex')}"`;
}

/** The file's etag (md5, as S3 gives a single-part object), and its sha256 when asked, in one read. */
async function hashesOfFile(file: string, sha256: boolean): Promise<{ etag: string; sha256?: string }> {
  const md5 = createHash('md5');
  const sha = sha256 ? createHash('sha256') : undefined;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    md5.update(chunk as Buffer);
    sha?.update(chunk as Buffer);
  }
  return { etag: `"${md5.digest('hex')}"`, sha256: sha?.digest('hex') };
}

/**
 * A folder used as an object store, with the same semantics as S3 where the pipeline relies on them:
 * string-prefix listing in key order, atomic whole-object writes, create-only and compare-and-swap writes.
 */
/**
 * A copy that reports its bytes as they move (256 KiB chunks), so a large file in a folder store (a network
 * mount, a slow disk) gets progress lines like an S3 transfer; without a listener, a plain copyFile.
 */
async function copyFileReporting(from: string, to: string, onProgress?: TransferProgress): Promise<void> {
  if (!onProgress) return fs.copyFile(from, to);
  const total = (await fs.stat(from)).size;
  let done = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      done += chunk.length;
      if (done < total) onProgress(done, total);
      callback(null, chunk);
    },
  });
  // read and written MAX_WRITE at a time: large writes cost several times the CPU per byte
  await pipeline(createReadStream(from, { highWaterMark: MAX_WRITE }), count, createWriteStream(to));
}

export class FsObjectStore implements ObjectStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** A key, or a folder prefix ending in '/' (kept, as S3 URIs keep it); the root for ''. */
  uri(key: string): string {
    if (key === '') return pathToFileURL(this.root + path.sep).href;
    const folder = key.endsWith('/');
    const href = pathToFileURL(this.pathOf(folder ? key.slice(0, -1) : key)).href;
    return folder ? href + '/' : href;
  }

  private pathOf(key: string): string {
    if (
      key === '' ||
      key.split('/').some((p) => p === '..' || p === '.' || p === '') ||
      key.startsWith(TMP_DIR)
    ) {
      throw new UserError(`invalid object key "${key}"`);
    }
    return path.join(this.root, ...key.split('/'));
  }

  private async tmpFile(): Promise<string> {
    const dir = path.join(this.root, TMP_DIR);
    await fs.mkdir(dir, { recursive: true });
    return path.join(dir, `${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (prefix.split('/').some((p) => p === '..' || p === '.'))
      throw new UserError(`invalid key prefix "${prefix}"`);
    // Only the folder the prefix ends in can hold matches; S3 prefixes are strings, not folders.
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const start = dirPart ? path.join(this.root, ...dirPart.split('/')) : this.root;
    const keys: string[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (
          (err as NodeJS.ErrnoException).code === 'ENOENT' ||
          (err as NodeJS.ErrnoException).code === 'ENOTDIR'
        )
          return;
        throw err;
      }
      for (const e of entries) {
        const key = keyPrefix + e.name;
        if (key === TMP_DIR) continue;
        if (e.isDirectory()) {
          // descend only where keys below could still match the prefix
          if (key.startsWith(prefix) || prefix.startsWith(key + '/'))
            await walk(path.join(dir, e.name), key + '/');
        } else if (e.isFile() && key.startsWith(prefix)) {
          keys.push(key);
        }
      }
    };
    await walk(start, dirPart ? dirPart + '/' : '');
    keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) as number);
    for (const key of keys) {
      const info = await this.head(key);
      if (info) yield info;
    }
  }

  async listPrefixes(prefix: string): Promise<string[]> {
    const found = new Set<string>();
    for await (const obj of this.list(prefix)) {
      const rest = obj.key.slice(prefix.length);
      const cut = rest.indexOf('/');
      if (cut >= 0) found.add(prefix + rest.slice(0, cut + 1));
    }
    return [...found].sort();
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await fs.stat(this.pathOf(key));
      if (!st.isFile()) return undefined;
      return { key, size: st.size, lastModified: st.mtime };
    } catch (err) {
      if (
        (err as NodeJS.ErrnoException).code === 'ENOENT' ||
        (err as NodeJS.ErrnoException).code === 'ENOTDIR'
      )
        return undefined;
      throw err;
    }
  }

  /**
   * The file's version without reading it: its inode and change time (ctime, which every write, rename
   * and truncate sets and no tool can set back). Every write here goes to a new file renamed into place,
   * so a rewrite gives a new version; so does an edit in place. A folder copied elsewhere gets new
   * versions too, which only costs a hash of the bytes when it is checked. No etag: that needs the bytes.
   */
  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      const st = await fs.stat(this.pathOf(key), { bigint: true });
      if (!st.isFile()) return undefined;
      return { size: Number(st.size), versionId: `${st.ino}.${st.ctimeNs}` };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  async get(key: string): Promise<{ body: Buffer; etag?: string } | undefined> {
    try {
      const body = await fs.readFile(this.pathOf(key));
      return { body, etag: etagOf(body) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
      throw err;
    }
  }

  async put(key: string, body: Buffer | string, options: PutOptions = {}): Promise<{ etag?: string }> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const target = this.pathOf(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = await this.tmpFile();
    await fs.writeFile(tmp, bytes);
    try {
      if (options.ifNoneMatch) {
        // link() fails when the target exists, and the target appears whole or not at all
        try {
          await fs.link(tmp, target);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new PreconditionFailedError(key);
          throw err;
        }
      } else if (options.ifMatch !== undefined) {
        await this.withLock(key, async () => {
          const current = await this.get(key);
          if (!current || current.etag !== options.ifMatch) throw new PreconditionFailedError(key);
          await fs.rename(tmp, target);
        });
      } else {
        await fs.rename(tmp, target);
      }
    } finally {
      await fs.rm(tmp, { force: true });
    }
    return { etag: etagOf(bytes) };
  }

  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const lock = path.join(this.root, TMP_DIR, `${createHash('sha256').update(key).digest('hex')}.lock`);
    const deadline = Date.now() + STALE_LOCK_MS * 2;
    for (;;) {
      try {
        const handle = await fs.open(lock, 'wx');
        await handle.close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const st = await fs.stat(lock).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) await this.breakStaleLock(lock, st.ino);
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for the lock on ${key}`, { cause: err });
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
      }
    }
    try {
      return await fn();
    } finally {
      await fs.rm(lock, { force: true });
    }
  }

  /**
   * Removes a crashed writer's lock. Renamed first, not removed: of several waiters that saw the same stale
   * lock, one moves it; one that moved a fresh lock taken meanwhile (another inode) puts it back.
   */
  private async breakStaleLock(lock: string, staleIno: number): Promise<void> {
    const moved = `${lock}.stale-${randomBytes(6).toString('hex')}`;
    try {
      await fs.rename(lock, moved);
    } catch {
      return; // another waiter moved it first
    }
    const st = await fs.stat(moved).catch(() => undefined);
    if (st && st.ino !== staleIno) await fs.link(moved, lock).catch(() => undefined);
    await fs.rm(moved, { force: true });
  }

  async uploadFile(
    key: string,
    file: string,
    options: UploadOptions = {},
  ): Promise<StoredObject & { sha256?: string }> {
    const target = this.pathOf(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = await this.tmpFile();
    try {
      await copyFileReporting(file, tmp, options.onProgress);
      await fs.rename(tmp, target);
    } finally {
      await fs.rm(tmp, { force: true });
    }
    const stored = await this.stat(key);
    if (!stored) throw new Error(`${this.uri(key)} disappeared right after it was written`);
    // hashed from the stored copy: what the manifest records is what the store holds
    const hashes = await hashesOfFile(target, options.sha256 ?? false);
    options.onProgress?.(stored.size, stored.size);
    return { ...stored, ...hashes };
  }

  async downloadFile(
    key: string,
    dest: string,
    options: DownloadOptions = {},
  ): Promise<{ size: number; sha256?: string }> {
    const source = this.pathOf(key);
    await fs.mkdir(path.dirname(path.resolve(dest)), { recursive: true });
    try {
      await copyFileReporting(source, dest, options.onProgress);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new Error(`object ${key} does not exist`, { cause: err });
      throw err;
    }
    const size = (await fs.stat(dest)).size;
    options.onWritten?.(0, size);
    // hashed from the copy: what the caller gets is what it has
    const sha256 = options.sha256 ? (await hashesOfFile(dest, true)).sha256 : undefined;
    options.onProgress?.(size, size);
    return { size, sha256 };
  }

  async deleteMany(keys: string[]): Promise<{ deleted: number; requests: number }> {
    let deleted = 0;
    for (const key of keys) {
      const file = this.pathOf(key);
      try {
        await fs.unlink(file);
        deleted++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      await this.pruneEmptyDirs(path.dirname(file));
    }
    return { deleted, requests: Math.ceil(keys.length / 1000) };
  }

  private async pruneEmptyDirs(dir: string): Promise<void> {
    while (dir.startsWith(this.root + path.sep)) {
      try {
        await fs.rmdir(dir);
      } catch {
        return; // not empty, or gone
      }
      dir = path.dirname(dir);
    }
  }
}
