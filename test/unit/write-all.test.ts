import type { FileHandle } from 'node:fs/promises';
import { BatchWriter, MAX_WRITE, writevAll } from '../../src/adapters/system/write-all';

/** A file handle that keeps the bytes of each writev at their positions, and may write short. */
function fakeHandle(o: { short?: number } = {}) {
  const calls: { bytes: number; position?: number }[] = [];
  const file = Buffer.alloc(8 * 1024 * 1024);
  let length = 0;
  let cursor = 0;
  const fh = {
    writev: (buffers: Buffer[], position?: number | null) => {
      let bytes = Buffer.concat(buffers);
      if (o.short && bytes.length > o.short) bytes = bytes.subarray(0, o.short);
      const at = position ?? cursor;
      calls.push({ bytes: bytes.length, position: position ?? undefined });
      const end = at + bytes.length;
      length = Math.max(length, end);
      bytes.copy(file, at);
      if (position === undefined || position === null) cursor = end;
      return Promise.resolve({ bytesWritten: bytes.length, buffers });
    },
  };
  return { fh: fh as unknown as FileHandle, calls, bytes: () => file.subarray(0, length) };
}

const pattern = (n: number, seed = 0): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < 256; i++) b[i] = (i * 31 + seed) & 0xff;
  for (let i = 256; i < n; i *= 2) b.copy(b, i, 0, Math.min(i, n - i));
  return b;
};

describe('writevAll', () => {
  // writes of 512 KiB or more cost 3-8x the system CPU per byte of 256 KiB writes on the bench machine
  it('hands the system at most MAX_WRITE bytes per call, in order, at the position asked', async () => {
    const f = fakeHandle();
    const data = [pattern(3 * 1024 * 1024 + 5), pattern(100, 7), pattern(MAX_WRITE * 2, 9)];
    await writevAll(f.fh, data, 10);
    expect(Math.max(...f.calls.map((c) => c.bytes))).toBeLessThanOrEqual(MAX_WRITE);
    expect(f.bytes().subarray(10).equals(Buffer.concat(data))).toBe(true);
    expect(f.calls[0].position).toBe(10);
  });

  it('finishes short writes', async () => {
    const f = fakeHandle({ short: 1000 });
    const data = [pattern(5000), pattern(3000, 3)];
    await writevAll(f.fh, data);
    expect(f.bytes().equals(Buffer.concat(data))).toBe(true);
    expect(f.calls.every((c) => c.bytes <= 1000)).toBe(true);
  });
});

describe('BatchWriter', () => {
  it('gathers small chunks into MAX_WRITE writes and writes the rest on flush', async () => {
    const f = fakeHandle();
    const w = new BatchWriter(f.fh, 4096);
    const chunks = Array.from({ length: 50 }, (_, i) => pattern(16 * 1024 + i, i));
    let written = 0;
    for (const c of chunks) written += await w.push(c);
    written += await w.flush();
    const total = chunks.reduce((n, c) => n + c.length, 0);
    expect(written).toBe(total);
    expect(f.bytes().subarray(4096).equals(Buffer.concat(chunks))).toBe(true);
    // every write but the last is exactly MAX_WRITE: few calls, none large
    expect(f.calls.slice(0, -1).every((c) => c.bytes === MAX_WRITE)).toBe(true);
    expect(f.calls.at(-1)!.bytes).toBeLessThanOrEqual(MAX_WRITE);
    expect(f.calls.length).toBe(Math.ceil(total / MAX_WRITE));
  });

  it('cuts one large chunk into MAX_WRITE writes', async () => {
    const f = fakeHandle();
    const w = new BatchWriter(f.fh);
    const big = pattern(MAX_WRITE * 3 + 17);
    expect(await w.push(big)).toBe(MAX_WRITE * 3);
    expect(await w.flush()).toBe(17);
    expect(f.bytes().equals(big)).toBe(true);
    expect(f.calls.map((c) => c.bytes)).toEqual([MAX_WRITE, MAX_WRITE, MAX_WRITE, 17]);
  });
});
