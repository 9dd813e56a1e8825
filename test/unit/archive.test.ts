import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { openSync, closeSync, writeSync } from 'node:fs';
import { ZipArchives } from '../../src/adapters/system/zip';
import { ArrivingBytes } from '../../src/core/byte-ranges';
import { planExtraction, UnsafeArchiveError, unsafeName, type RawArchiveEntry } from '../../src/core/archive';
import { buildZip, maliciousZips } from '../helpers/zip';

const entry = (name: string, o: Partial<RawArchiveEntry> = {}): RawArchiveEntry => ({
  name,
  madeBy: 3,
  externalAttributes: (0o100644 << 16) >>> 0,
  compressionMethod: 8,
  encrypted: false,
  compressedSize: 10,
  uncompressedSize: 20,
  localHeaderOffset: 0,
  ...o,
});

describe('planExtraction (core rules)', () => {
  it('plans files and folders with ordinary modes whatever the archive says', () => {
    const plan = planExtraction(
      [
        entry('bin/', { externalAttributes: ((0o040700 << 16) >>> 0) | 0x10, uncompressedSize: 0 }),
        entry('bin/run', { externalAttributes: (0o100700 << 16) >>> 0, localHeaderOffset: 100 }),
        entry('weights.bin', { externalAttributes: (0o100600 << 16) >>> 0, localHeaderOffset: 200 }),
        entry('dos.txt', { madeBy: 0, externalAttributes: 0x20, localHeaderOffset: 300 }),
      ],
      1000,
    );
    expect(plan).toEqual([
      { path: 'bin', kind: 'directory', size: 0, mode: 0o755 },
      { path: 'bin/run', kind: 'file', size: 20, mode: 0o755 },
      { path: 'weights.bin', kind: 'file', size: 20, mode: 0o644 },
      { path: 'dos.txt', kind: 'file', size: 20, mode: 0o644 },
    ]);
  });

  it.each([
    [3, 'unix'],
    [2, 'VMS'],
    [0, 'host 0'],
    [19, 'host 19'],
  ])('refuses a symbolic link whatever the made-by host (%s)', (host, label) => {
    const link = entry('passwd', { madeBy: host, externalAttributes: (0o120777 << 16) >>> 0 });
    expect(() => planExtraction([link], 100)).toThrow(`"passwd" (symbolic link (made by ${label}))`);
  });

  it('lists every problem at once and refuses reserved top-level names', () => {
    let err: unknown;
    try {
      planExtraction(
        [
          entry('../a', { localHeaderOffset: 0 }),
          entry('.model-pipeline/manifest.json', { localHeaderOffset: 100 }),
          entry('x', { localHeaderOffset: 200, encrypted: true }),
          entry('y', { localHeaderOffset: 300, compressionMethod: 12 }),
        ],
        1000,
        { reserved: ['.model-pipeline'] },
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsafeArchiveError);
    expect((err as UnsafeArchiveError).problems).toEqual([
      '"../a" (".." in the name)',
      '".model-pipeline/manifest.json" (.model-pipeline is reserved for model-pipeline)',
      '"x" (encrypted)',
      '"y" (compression method 12 is not stored or deflate)',
    ]);
  });

  it('limits entries, unpacked size and ratio', () => {
    const many = Array.from({ length: 11 }, (_, i) => entry(`f${i}`, { localHeaderOffset: i * 100 }));
    expect(() => planExtraction(many, 10_000, { maxEntries: 10 })).toThrow(
      /11 entries, more than the limit of 10/,
    );
    expect(() =>
      planExtraction([entry('a', { uncompressedSize: 2000 })], 1000, { maxUnpackedBytes: 1999 }),
    ).toThrow(/unpacks to 2000 bytes, more than the limit of 1999/);
    // below the floor any ratio is fine; above it the ratio counts
    expect(
      planExtraction([entry('a', { uncompressedSize: 5000 })], 10, { ratioFloorBytes: 5000 }),
    ).toHaveLength(1);
    expect(() =>
      planExtraction([entry('a', { uncompressedSize: 5001 })], 10, { ratioFloorBytes: 5000 }),
    ).toThrow(/unpacks to 5001 bytes from 10 \(500:1, more than 100:1\): a zip bomb/);
  });

  it('unsafeName: only plain relative names pass', () => {
    for (const ok of ['a', 'a/b.txt', 'dir/', 'a b/c-d_e.f', 'ünï/cödé'])
      expect(unsafeName(ok)).toBeUndefined();
    for (const bad of ['', '/a', 'a/../b', '..', 'a\\b', 'C:x', 'a//b', './a', 'a\0b', 'x'.repeat(256)])
      expect(unsafeName(bad)).toEqual(expect.any(String));
  });
});

describe('ZipArchives (yauzl)', () => {
  const archives = new ZipArchives();
  let dir: string;
  const zipFile = (bytes: Buffer) => {
    const f = path.join(dir, `${Math.random().toString(36).slice(2)}.zip`);
    writeFileSync(f, bytes);
    return f;
  };
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'mp-zip-'));
  });

  it('unpacks stored and deflated files, folders and UTF-8 names with modes 0644 / 0755', async () => {
    const zip = zipFile(
      buildZip([
        { name: 'bin/', mode: 0o040700 },
        { name: 'bin/run.sh', data: '#!/bin/sh\necho hi\n', mode: 0o100700 },
        { name: 'weights.bin', data: Buffer.alloc(5000, 7), mode: 0o100600 },
        { name: 'stored.txt', data: 'plain', method: 0 },
        { name: 'tokenizer/vocab ü.txt', data: 'a\nb\n', flags: 0x800 },
        { name: 'empty.txt', data: '' },
      ]),
    );
    const out = path.join(dir, 'out');
    mkdirSync(out);
    const plan = await archives.extract(zip, out);
    expect(plan.map((p) => p.path)).toEqual([
      'bin',
      'bin/run.sh',
      'weights.bin',
      'stored.txt',
      'tokenizer/vocab ü.txt',
      'empty.txt',
    ]);
    const mode = (p: string) => lstatSync(path.join(out, p)).mode & 0o777;
    expect(mode('bin')).toBe(0o755);
    expect(mode('bin/run.sh')).toBe(0o755);
    expect(mode('weights.bin')).toBe(0o644);
    expect(mode('tokenizer')).toBe(0o755);
    expect(readFileSync(path.join(out, 'weights.bin'))).toEqual(Buffer.alloc(5000, 7));
    expect(readFileSync(path.join(out, 'stored.txt'), 'utf8')).toBe('plain');
    expect(readFileSync(path.join(out, 'tokenizer/vocab ü.txt'), 'utf8')).toBe('a\nb\n');
    expect(readFileSync(path.join(out, 'empty.txt'), 'utf8')).toBe('');
    expect(await archives.inspect(zip)).toEqual(plan);
  });

  it.each(maliciousZips().map((m) => [m.label, m] as const))(
    'refuses %s before writing anything',
    async (_label, m) => {
      const parent = path.join(dir, 'p');
      const out = path.join(parent, 'out');
      mkdirSync(out, { recursive: true });
      const zip = zipFile(m.zip);
      await expect(archives.inspect(zip)).rejects.toThrow(m.reason);
      await expect(archives.extract(zip, out, { limits: { reserved: ['.model-pipeline'] } })).rejects.toThrow(
        UnsafeArchiveError,
      );
      await expect(archives.extract(zip, out)).rejects.toThrow(m.reason);
      expect(readdirSync(out)).toEqual([]);
      expect(readdirSync(parent)).toEqual(['out']);
    },
  );

  it('an entry that inflates past its declared size fails while unpacking, at the declared size', async () => {
    const zip = zipFile(buildZip([{ name: 'liar', data: Buffer.alloc(1024 * 1024), declaredSize: 10 }]));
    const out = path.join(dir, 'out');
    mkdirSync(out);
    await expect(archives.extract(zip, out)).rejects.toThrow(/cannot unpack "liar": .*(too many bytes|size)/);
    expect(lstatSync(path.join(out, 'liar')).size).toBeLessThanOrEqual(10);
  });

  it('a file that is not a zip: a clear error', async () => {
    const f = zipFile(Buffer.from('PK-not-a-zip'));
    await expect(archives.inspect(f)).rejects.toThrow(/is not a readable zip archive/);
  });

  it('stops at an aborted signal', async () => {
    const zip = zipFile(buildZip([{ name: 'a', data: 'x' }]));
    const out = path.join(dir, 'out');
    mkdirSync(out);
    const ac = new AbortController();
    ac.abort();
    await expect(archives.extract(zip, out, { signal: ac.signal })).rejects.toThrow(/abort/i);
    expect(existsSync(path.join(out, 'a'))).toBe(false);
  });

  it('never writes through a folder name that exists as a link', async () => {
    const out = path.join(dir, 'out');
    mkdirSync(out);
    const outside = path.join(dir, 'outside');
    mkdirSync(outside);
    symlinkSync(outside, path.join(out, 'sub'));
    const zip = zipFile(buildZip([{ name: 'sub/file', data: 'x' }]));
    await expect(archives.extract(zip, out)).rejects.toThrow(
      /exists and is not a folder; refusing to write through it/,
    );
    expect(readdirSync(outside)).toEqual([]);
  });
});

describe('ZipArchives on a file still arriving (fetch-model unpacks while it downloads)', () => {
  const archives = new ZipArchives();
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'mp-zip-arriving-'));
  });

  /** Writes `bytes` into `file` in chunks, in the given order of chunk indexes, announcing each. */
  function feeder(file: string, bytes: Buffer, chunk: number) {
    const fd = openSync(file, 'w');
    const arriving = new ArrivingBytes();
    const chunks = Math.ceil(bytes.length / chunk);
    const write = (i: number) => {
      const start = i * chunk;
      const end = Math.min(bytes.length, start + chunk);
      writeSync(fd, bytes, start, end - start, start);
      arriving.add(start, end);
    };
    const tick = () => new Promise((r) => setImmediate(r));
    return {
      arriving,
      chunks,
      write,
      async writeAll(order: number[]) {
        for (const i of order) {
          write(i);
          await tick();
        }
      },
      done(err?: Error) {
        closeSync(fd);
        arriving.close(err);
      },
    };
  }

  const files = [
    { name: 'weights.bin', data: randomBytes(300_000) },
    { name: 'tokenizer/', mode: 0o040755 },
    { name: 'tokenizer/vocab.txt', data: 'a\nb\n'.repeat(5000), method: 0 as const },
    { name: 'late.bin', data: randomBytes(200_000) },
  ];

  it('unpacks entries as their bytes arrive, tail first, and starts before the file is complete', async () => {
    const zip = buildZip(files);
    const file = path.join(dir, 'model.zip');
    const out = path.join(dir, 'out');
    mkdirSync(out);
    const f = feeder(file, zip, 4096);
    const lateAt = zip.indexOf(Buffer.from('late.bin')); // inside the last entry's local header
    const withheld = Math.floor((lateAt + 8192) / 4096); // in the data of the last entry
    const extraction = archives.extract(file, out, {
      arriving: { size: zip.length, ready: (s, e) => f.arriving.ready(s, e) },
    });
    // the tail (central directory) first, then everything but one chunk of the last entry
    const order = [f.chunks - 1, ...Array.from({ length: f.chunks - 1 }, (_, i) => i)].filter(
      (i) => i !== withheld,
    );
    await f.writeAll(order);
    // the first entries are unpacked while a chunk of the file is still missing
    for (let i = 0; i < 200 && !existsSync(path.join(out, 'tokenizer/vocab.txt')); i++)
      await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(path.join(out, 'weights.bin'))).toEqual(files[0].data);
    expect(readFileSync(path.join(out, 'tokenizer/vocab.txt'), 'utf8')).toBe('a\nb\n'.repeat(5000));
    f.write(withheld);
    f.done();
    const plan = await extraction;
    expect(plan.map((p) => p.path)).toEqual(['weights.bin', 'tokenizer', 'tokenizer/vocab.txt', 'late.bin']);
    expect(readFileSync(path.join(out, 'late.bin'))).toEqual(files[3].data);
  });

  it('a download that ends early fails the unpacking with its error instead of waiting for ever', async () => {
    const zip = buildZip(files);
    const file = path.join(dir, 'model.zip');
    const out = path.join(dir, 'out');
    mkdirSync(out);
    const f = feeder(file, zip, 4096);
    const extraction = archives.extract(file, out, {
      arriving: { size: zip.length, ready: (s, e) => f.arriving.ready(s, e) },
    });
    const settled = extraction.then(
      () => undefined,
      (err: unknown) => err,
    );
    await f.writeAll([f.chunks - 1, 0, 1]);
    f.done(new Error('connection reset by peer'));
    expect(String(await settled)).toMatch(/connection reset by peer/);
  });

  it.each(maliciousZips().map((m) => [m.label, m] as const))(
    'refuses %s while it arrives, before writing anything',
    async (_label, m) => {
      const file = path.join(dir, 'model.zip');
      const out = path.join(dir, 'out');
      mkdirSync(out);
      const f = feeder(file, m.zip, 512);
      const extraction = archives.extract(file, out, {
        limits: { reserved: ['.model-pipeline'] },
        arriving: { size: m.zip.length, ready: (s, e) => f.arriving.ready(s, e) },
      });
      const settled = extraction.then(
        () => undefined,
        (err: unknown) => err,
      );
      await f.writeAll([...Array.from({ length: f.chunks }, (_, i) => f.chunks - 1 - i)]);
      f.done();
      expect(await settled).toBeInstanceOf(UnsafeArchiveError);
      expect(String(await settled)).toMatch(m.reason);
      expect(readdirSync(out)).toEqual([]);
    },
  );
});
