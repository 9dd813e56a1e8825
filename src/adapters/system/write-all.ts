import type { FileHandle } from 'node:fs/promises';

/**
 * Writes every byte of `buffers` (writev may write fewer than asked): at `position` and on, or at the file's
 * current position when it is not given.
 */
export async function writevAll(fh: FileHandle, buffers: Buffer[], position?: number): Promise<void> {
  let batch = buffers;
  let pos = position;
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
