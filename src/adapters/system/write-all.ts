import type { FileHandle } from 'node:fs/promises';

/**
 * Bytes one write system call is given, at most. Measured on the 2-core bench machine (Linux 6.18, ext4,
 * 1.1 GB into the page cache): writes of up to 384 KiB cost 0.5 s of system CPU per GB, writes of 512 KiB
 * or more (one buffer, or a writev adding up to it) 1.7-4 s. Unpacking a 1 GiB model.zip took 6.5 s of
 * system CPU with 1 MiB writes, 3.7-4.5 s with these.
 */
export const MAX_WRITE = 256 * 1024;

/** The buffers in groups of at most MAX_WRITE bytes (a larger buffer is cut, without copying). */
function writeGroups(buffers: Buffer[]): Buffer[][] {
  const groups: Buffer[][] = [];
  let group: Buffer[] = [];
  let bytes = 0;
  for (const b of buffers) {
    for (let off = 0; off < b.length;) {
      const piece = b.subarray(off, off + Math.min(MAX_WRITE - bytes, b.length - off));
      group.push(piece);
      bytes += piece.length;
      off += piece.length;
      if (bytes === MAX_WRITE) {
        groups.push(group);
        group = [];
        bytes = 0;
      }
    }
  }
  if (bytes > 0) groups.push(group);
  return groups;
}

/**
 * Writes every byte of `buffers` (writev may write fewer than asked), MAX_WRITE bytes per call at most: at
 * `position` and on, or at the file's current position when it is not given.
 */
export async function writevAll(fh: FileHandle, buffers: Buffer[], position?: number): Promise<void> {
  let pos = position;
  for (const group of writeGroups(buffers)) {
    let batch = group;
    while (batch.length > 0) {
      let { bytesWritten } = await fh.writev(batch, pos);
      if (pos !== undefined) pos += bytesWritten;
      const rest: Buffer[] = [];
      for (const b of batch) {
        if (bytesWritten >= b.length) bytesWritten -= b.length;
        else {
          rest.push(b.subarray(bytesWritten));
          bytesWritten = 0;
        }
      }
      batch = rest;
    }
  }
}

/**
 * Gathers small chunks (socket reads, inflate output) into writes of MAX_WRITE bytes: few system calls,
 * none of them large. Writes at `position` and on, or at the file's current position.
 */
export class BatchWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly fh: FileHandle,
    private position?: number,
  ) {}

  /** Takes the chunk; resolves once every whole MAX_WRITE of what is pending is written (the rest waits). */
  async push(chunk: Buffer): Promise<number> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < MAX_WRITE) return 0;
    const groups = writeGroups(this.pending);
    const rest = this.pendingBytes % MAX_WRITE === 0 ? [] : groups.pop()!;
    return this.write(groups.flat(), rest);
  }

  /** Writes what is pending; resolves with the bytes written by this call. */
  async flush(): Promise<number> {
    return this.write(this.pending, []);
  }

  private async write(now: Buffer[], rest: Buffer[]): Promise<number> {
    const bytes = now.reduce((n, b) => n + b.length, 0);
    this.pending = rest;
    this.pendingBytes -= bytes;
    if (bytes === 0) return 0;
    await writevAll(this.fh, now, this.position);
    if (this.position !== undefined) this.position += bytes;
    return bytes;
  }
}
