import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FsObjectStore } from '../../src/adapters/local/fs-store';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { PreconditionFailedError } from '../../src/core/errors';
import { compareStored } from '../../src/core/gates';
import type { ObjectStore } from '../../src/core/ports';
import { motoEndpoint, newBucket } from '../helpers/aws';
import { createProgress } from '../../src/adapters/system/progress';
import { withTransferProgress } from '../../src/adapters/system/transfer-progress';

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

const backends: [string, () => Promise<ObjectStore>][] = [
  ['local folder', async () => new FsObjectStore(mkdtempSync(path.join(tmpdir(), 'mp-store-')))],
  [
    'S3 (moto_server)',
    async () =>
      new S3ObjectStore({
        bucket: await newBucket('contract'),
        region: 'us-east-1',
        endpoint: motoEndpoint(),
      }),
  ],
];

describe.each(backends)('ObjectStore contract: %s', (_name, make) => {
  let store: ObjectStore;
  beforeEach(async () => {
    store = await make();
  });

  it('puts, heads and gets an object', async () => {
    await store.put('a/b/c.txt', 'hello');
    const head = await store.head('a/b/c.txt');
    expect(head?.size).toBe(5);
    expect((await store.get('a/b/c.txt'))?.body.toString()).toBe('hello');
    expect(await store.head('a/b/missing')).toBeUndefined();
    expect(await store.get('a/b/missing')).toBeUndefined();
  });

  it('stores zero-byte marker objects', async () => {
    await store.put('1.0.0-abcdef0/development', Buffer.alloc(0));
    expect((await store.head('1.0.0-abcdef0/development'))?.size).toBe(0);
  });

  it('lists by exact string prefix in key order: 1.2.1- never matches 1.2.10-', async () => {
    for (const k of [
      '1.2.10-aaaaaaa/model.zip',
      '1.2.1-bbbbbbb/model.zip',
      '1.2.1-bbbbbbb/manifest.json',
      'z.txt',
    ]) {
      await store.put(k, 'x');
    }
    expect(await keys(store, '1.2.1-')).toEqual(['1.2.1-bbbbbbb/manifest.json', '1.2.1-bbbbbbb/model.zip']);
    expect(await keys(store, '1.2.1')).toEqual([
      '1.2.1-bbbbbbb/manifest.json',
      '1.2.1-bbbbbbb/model.zip',
      '1.2.10-aaaaaaa/model.zip',
    ]);
    expect(await keys(store, '')).toHaveLength(4);
    expect(await store.listPrefixes('')).toEqual(['1.2.1-bbbbbbb/', '1.2.10-aaaaaaa/']);
  });

  it('lists past the first 1000 keys', async () => {
    const all = Array.from({ length: 1105 }, (_, i) => `many/k${String(i).padStart(5, '0')}`);
    for (let i = 0; i < all.length; i += 50)
      await Promise.all(all.slice(i, i + 50).map((k) => store.put(k, '')));
    const listed = await keys(store, 'many/');
    expect(listed).toEqual(all);
  });

  it('create-only writes: exactly one of two racing writers wins', async () => {
    const results = await Promise.allSettled([
      store.put('race/marker', 'one', { ifNoneMatch: true }),
      store.put('race/marker', 'two', { ifNoneMatch: true }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0].reason).toBeInstanceOf(PreconditionFailedError);
    await expect(store.put('race/marker', 'three', { ifNoneMatch: true })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
  });

  it('compare-and-swap writes succeed only against the current etag', async () => {
    const first = await store.put('cas/pointer', 'v1');
    const current = await store.get('cas/pointer');
    expect(current?.etag).toBeDefined();
    await store.put('cas/pointer', 'v2', { ifMatch: current!.etag });
    await expect(store.put('cas/pointer', 'v3', { ifMatch: current!.etag })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    expect((await store.get('cas/pointer'))?.body.toString()).toBe('v2');
    expect(first.etag).toBe(current!.etag);
  });

  it('uploads and downloads files byte for byte', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-files-'));
    const src = path.join(dir, 'in.bin');
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) % 251;
    writeFileSync(src, bytes);
    const up = await store.uploadFile('files/model.zip', src, { sha256: true });
    expect(up.size).toBe(bytes.length);
    expect(up.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    const dest = path.join(dir, 'out', 'model.zip');
    await store.downloadFile('files/model.zip', dest);
    expect(readFileSync(dest).equals(bytes)).toBe(true);
    await expect(store.downloadFile('files/none.zip', path.join(dir, 'x'))).rejects.toThrow(/does not exist/);
  });

  it('reports transfer progress: monotonic, ending at the size, and through the store wrapper as lines', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-progress-'));
    const src = path.join(dir, 'model.zip');
    const size = 12 * 1024 * 1024 + 5;
    writeFileSync(src, Buffer.alloc(size, 7));
    const seen: [number, number][] = [];
    await store.uploadFile('progress/model.zip', src, {
      onProgress: (done, total) => seen.push([done, total]),
    });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[seen.length - 1]).toEqual([size, size]);
    for (let i = 1; i < seen.length; i++) expect(seen[i][0]).toBeGreaterThanOrEqual(seen[i - 1][0]);
    const down: [number, number][] = [];
    await store.downloadFile('progress/model.zip', path.join(dir, 'back.zip'), {
      onProgress: (d, t) => down.push([d, t]),
    });
    expect(down[down.length - 1]).toEqual([size, size]);

    const lines: string[] = [];
    const wrapped = withTransferProgress(store, createProgress({ line: (l) => lines.push(l) }));
    await wrapped.uploadFile('progress/again.zip', src);
    await wrapped.downloadFile('progress/again.zip', path.join(dir, 'again.zip'));
    // one closing line each, with human sizes (no bare byte counts); other methods pass through
    expect(lines.filter((l) => / in (\d+ ms|\S+) \(/.test(l))).toEqual([
      expect.stringMatching(/^upload model\.zip: 12\.0 MiB in (\d+ ms|\S+) \([\d.]+ (KiB|MiB|GiB)\/s\)$/),
      expect.stringMatching(/^download again\.zip: 12\.0 MiB in /),
    ]);
    expect(lines.join('\n')).not.toMatch(/\d{6,} bytes/);
    expect((await wrapped.head('progress/again.zip'))?.size).toBe(size);
  });

  it('stat reports what uploadFile reported, and any later write of the key changes it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-stat-'));
    const file = path.join(dir, 'model.bin');
    writeFileSync(file, Buffer.alloc(4096, 1));
    const up = await store.uploadFile('s/model.bin', file);
    const now = await store.stat('s/model.bin');
    expect(now?.size).toBe(4096);
    expect(compareStored('model.bin', up, now)).toEqual({ verdict: 'same' });
    expect(await store.stat('s/other.bin')).toBeUndefined();
    // other bytes, same size: never "same"
    writeFileSync(file, Buffer.alloc(4096, 2));
    await store.uploadFile('s/model.bin', file);
    expect(compareStored('model.bin', up, await store.stat('s/model.bin')).verdict).not.toBe('same');
    await store.put('s/model.bin', Buffer.alloc(4096, 3));
    expect(compareStored('model.bin', up, await store.stat('s/model.bin')).verdict).not.toBe('same');
  });

  it('deletes in batches of at most 1000 keys and ignores missing keys', async () => {
    const all = Array.from({ length: 1203 }, (_, i) => `del/k${i}`);
    for (let i = 0; i < all.length; i += 100)
      await Promise.all(all.slice(i, i + 100).map((k) => store.put(k, '')));
    await store.put('keep/me', 'x');
    const r = await store.deleteMany([...all, 'del/never-existed']);
    expect(r.requests).toBe(2);
    expect(await keys(store, 'del/')).toEqual([]);
    expect(await keys(store, 'keep/')).toEqual(['keep/me']);
  });

  it('names objects with a URI', () => {
    expect(store.uri('p/model.zip')).toMatch(/^(s3:\/\/[a-z0-9-]+|file:\/\/.+)\/p\/model\.zip$/);
  });
});
