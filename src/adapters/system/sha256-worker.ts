import { Worker } from 'node:worker_threads';

/*
 * The worker's code, evaluated as a string so the bundle needs no second file. It hashes the bytes it is
 * given (views of SharedArrayBuffers the uploader reads parts into, so nothing is copied) in the order they
 * arrive, a range of a file it reads itself (a download hashes each stretch as soon as it is written, from
 * the page cache), or a whole file, and answers each message with its id.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { createReadStream, openSync, readSync, closeSync } = require('node:fs');
let hash = createHash('sha256');
const fds = new Map();
let chunk;
parentPort.on('message', async (m) => {
  try {
    if (m.type === 'update') {
      hash.update(new Uint8Array(m.buffer, m.offset, m.length));
      parentPort.postMessage({ id: m.id });
    } else if (m.type === 'file') {
      for await (const chunk of createReadStream(m.path, { highWaterMark: 1024 * 1024 })) hash.update(chunk);
      parentPort.postMessage({ id: m.id });
    } else if (m.type === 'range') {
      let fd = fds.get(m.path);
      if (fd === undefined) fds.set(m.path, (fd = openSync(m.path, 'r')));
      chunk ??= Buffer.allocUnsafe(4 * 1024 * 1024);
      for (let pos = m.start; pos < m.end;) {
        const n = readSync(fd, chunk, 0, Math.min(chunk.length, m.end - pos), pos);
        if (n === 0) throw new Error('the file is shorter than the bytes to hash');
        hash.update(chunk.subarray(0, n));
        pos += n;
      }
      parentPort.postMessage({ id: m.id });
    } else if (m.type === 'digest') {
      const digest = hash.digest('hex');
      hash = createHash('sha256');
      for (const fd of fds.values()) closeSync(fd);
      fds.clear();
      parentPort.postMessage({ id: m.id, digest });
    }
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.message || err) });
  }
});
`;

/**
 * sha256 on a worker thread, so hashing a large file does not take event-loop time from the upload that
 * reads it. Bytes are hashed in the order `update` is called; each call resolves when the worker is done
 * with the bytes, so the caller may then reuse the buffer.
 */
export class Sha256Worker {
  private readonly worker: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (d?: string) => void; reject: (e: Error) => void }>();
  private failed: Error | undefined;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; digest?: string; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (!p) return;
      if (m.error !== undefined) p.reject(new Error(`hashing failed: ${m.error}`));
      else p.resolve(m.digest);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (this.pending.size > 0) this.fail(new Error(`the hashing thread exited (code ${code})`));
    });
  }

  private fail(err: Error): void {
    this.failed ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private send(message: Record<string, unknown>): Promise<string | undefined> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id });
    });
  }

  /** Hashes bytes of a Buffer over a SharedArrayBuffer (anything else would be copied to the worker). */
  async update(bytes: Buffer): Promise<void> {
    if (!(bytes.buffer instanceof SharedArrayBuffer))
      throw new Error('Sha256Worker.update needs a Buffer over a SharedArrayBuffer');
    await this.send({ type: 'update', buffer: bytes.buffer, offset: bytes.byteOffset, length: bytes.length });
  }

  /** Hashes a whole file, read by the worker. */
  async file(path: string): Promise<void> {
    await this.send({ type: 'file', path });
  }

  /** Hashes bytes [start, end) of a file, read by the worker (the file stays open until the digest). */
  async range(path: string, start: number, end: number): Promise<void> {
    if (end > start) await this.send({ type: 'range', path, start, end });
  }

  /** The hex digest of everything hashed so far; the worker starts over. */
  async digest(): Promise<string> {
    return (await this.send({ type: 'digest' }))!;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** A part buffer the worker can read without a copy. */
export function sharedBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}
