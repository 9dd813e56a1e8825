import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { sharedBuffer, Sha256Worker } from '../../src/adapters/system/sha256-worker';

const MiB = 1024 * 1024;

/** 3.5 MiB that differ everywhere, so a range read from the wrong place changes every sum. */
function fileOf(size: number): { file: string; bytes: Buffer } {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) bytes.writeUInt32BE((i * 2654435761) >>> 0, i);
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'sha-worker-')), 'data.bin');
  writeFileSync(file, bytes);
  return { file, bytes };
}

const sha256 = (...parts: Buffer[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

describe('Sha256Worker.readPart (an upload part read, summed and hashed in one pass)', () => {
  const { file, bytes } = fileOf(3.5 * MiB);
  const parts = [bytes.subarray(0, 1.5 * MiB), bytes.subarray(1.5 * MiB, 3 * MiB), bytes.subarray(3 * MiB)];
  let worker: Sha256Worker;
  beforeEach(() => (worker = new Sha256Worker()));
  afterEach(() => worker.close());

  it('reads the range into the shared buffer and answers its CRC32', async () => {
    const into = sharedBuffer(parts[1].length);
    const sum = await worker.readPart(file, into, 1.5 * MiB, { crc: true });
    expect(into.equals(parts[1])).toBe(true);
    expect(sum).toBe(crc32(parts[1]));
  });

  it('hashes the parts given in order (a re-read without a sequence number is not hashed again)', async () => {
    const buffers = parts.map((p) => sharedBuffer(p.length));
    await worker.readPart(file, buffers[0], 0, { crc: true, seq: 1 });
    await worker.readPart(file, buffers[1], 1.5 * MiB, { crc: true, seq: 2 });
    await worker.readPart(file, buffers[1], 1.5 * MiB, { crc: true }); // a retry's read
    await worker.readPart(file, buffers[2], 3 * MiB, { crc: false, seq: 3 });
    expect(await worker.digest()).toBe(sha256(...parts));
  });

  it('refuses a part out of order instead of hashing to a wrong digest', async () => {
    await worker.readPart(file, sharedBuffer(parts[0].length), 0, { crc: true, seq: 1 });
    await expect(
      worker.readPart(file, sharedBuffer(parts[2].length), 3 * MiB, { crc: true, seq: 3 }),
    ).rejects.toThrow('hashing failed: part 3 came to be hashed before part 2');
  });

  it('says plainly when the file is shorter than the part', async () => {
    await expect(worker.readPart(file, sharedBuffer(MiB), 3 * MiB, { crc: true })).rejects.toThrow(
      /^the file shrank while it was being uploaded \(at byte 3670016\)$/,
    );
  });

  it('takes only shared memory (anything else would be copied to the thread)', async () => {
    await expect(worker.readPart(file, Buffer.alloc(10), 0, { crc: true })).rejects.toThrow(
      /SharedArrayBuffer/,
    );
  });
});
