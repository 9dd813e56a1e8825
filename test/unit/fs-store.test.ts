import { existsSync, mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FsObjectStore } from '../../src/adapters/local/fs-store';
import { PreconditionFailedError, UserError } from '../../src/core/errors';

// The cross-backend behaviour lives in test/integration/object-store.contract.test.ts; these are the
// folder-specific details: work files, key validation, the CAS lock, empty folders.

function newStore(): FsObjectStore {
  return new FsObjectStore(mkdtempSync(path.join(tmpdir(), 'mp-fs-')));
}

async function keys(store: FsObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

describe('FsObjectStore', () => {
  it('lists in UTF-8 byte order like S3 (upper case before lower, ASCII before accents)', async () => {
    const store = newStore();
    for (const k of ['p/b', 'p/é', 'p/B', 'p/a-1', 'p/a/x', 'p/a.txt', 'p/z']) await store.put(k, 'x');
    expect(await keys(store, 'p/')).toEqual(['p/B', 'p/a-1', 'p/a.txt', 'p/a/x', 'p/b', 'p/z', 'p/é']);
  });

  it('matches prefixes as strings, also ending inside a nested folder name', async () => {
    const store = newStore();
    for (const k of ['a/b/c/1', 'a/b/cd/2', 'a/b/x', 'a/bc', 'ab/3']) await store.put(k, 'x');
    expect(await keys(store, 'a/b/c')).toEqual(['a/b/c/1', 'a/b/cd/2']);
    expect(await keys(store, 'a/b')).toEqual(['a/b/c/1', 'a/b/cd/2', 'a/b/x', 'a/bc']);
    expect(await keys(store, 'a/b/c/')).toEqual(['a/b/c/1']);
    expect(await keys(store, 'a/b/c/1')).toEqual(['a/b/c/1']);
    expect(await keys(store, 'none/')).toEqual([]);
    expect(await store.listPrefixes('a/b/')).toEqual(['a/b/c/', 'a/b/cd/']);
  });

  it('never lists its work files, even while one is being written', async () => {
    const store = newStore();
    await store.put('m/model.zip', 'x');
    mkdirSync(path.join(store.root, '.mp-tmp'), { recursive: true });
    writeFileSync(path.join(store.root, '.mp-tmp', 'half-written'), 'y');
    expect(await keys(store, '')).toEqual(['m/model.zip']);
    expect(await store.listPrefixes('')).toEqual(['m/']);
  });

  it('reports a large copy as it goes, in both directions, so the folder store gets progress lines', async () => {
    const store = newStore();
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-fs-src-'));
    const file = path.join(dir, 'big.bin');
    writeFileSync(file, Buffer.alloc(5 * 1024 * 1024 + 7, 1));
    const up: number[] = [];
    await store.uploadFile('m/big.bin', file, { onProgress: (done) => up.push(done) });
    const down: number[] = [];
    const r = await store.downloadFile('m/big.bin', path.join(dir, 'back.bin'), {
      onProgress: (done, total) => {
        expect(total).toBe(5 * 1024 * 1024 + 7);
        down.push(done);
      },
    });
    expect(r.size).toBe(5 * 1024 * 1024 + 7);
    for (const seen of [up, down]) {
      expect(seen.length).toBeGreaterThanOrEqual(5); // 1 MiB at a time, not one call at the end
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
      expect(seen[seen.length - 1]).toBe(5 * 1024 * 1024 + 7);
    }
  });

  it('leaves no work files behind', async () => {
    const store = newStore();
    await store.put('a', '1');
    await store.put('b', '1', { ifNoneMatch: true });
    await expect(store.put('b', '2', { ifNoneMatch: true })).rejects.toBeInstanceOf(PreconditionFailedError);
    const etag = (await store.get('a'))!.etag;
    await store.put('a', '2', { ifMatch: etag });
    await expect(store.put('a', '3', { ifMatch: etag })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(readdirSync(path.join(store.root, '.mp-tmp'))).toEqual([]);
  });

  it.each(['', '../x', 'a/../b', 'a//b', '/a', 'a/', './a', '.mp-tmp/x'])('rejects key "%s"', async (key) => {
    const store = newStore();
    await expect(store.put(key, 'x')).rejects.toBeInstanceOf(UserError);
    await expect(store.head(key)).rejects.toBeInstanceOf(UserError);
  });

  it('never lists outside its folder', async () => {
    const parent = mkdtempSync(path.join(tmpdir(), 'mp-fs-parent-'));
    writeFileSync(path.join(parent, 'secret'), 'x');
    const store = new FsObjectStore(path.join(parent, 'store'));
    await store.put('k', 'v');
    await expect(keys(store, '../')).rejects.toBeInstanceOf(UserError);
  });

  it('lists nothing when the folder does not exist yet', async () => {
    const store = new FsObjectStore(path.join(mkdtempSync(path.join(tmpdir(), 'mp-fs-')), 'missing'));
    expect(await keys(store, '')).toEqual([]);
    expect(await store.listPrefixes('')).toEqual([]);
  });

  it('takes over a stale lock left by a crashed writer', async () => {
    const store = newStore();
    await store.put('cas/p', 'v1');
    const lock = path.join(
      store.root,
      '.mp-tmp',
      `${createHash('sha256').update('cas/p').digest('hex')}.lock`,
    );
    writeFileSync(lock, '');
    const old = new Date(Date.now() - 120_000);
    utimesSync(lock, old, old);
    const etag = (await store.get('cas/p'))!.etag;
    await store.put('cas/p', 'v2', { ifMatch: etag });
    expect((await store.get('cas/p'))!.body.toString()).toBe('v2');
    expect(existsSync(lock)).toBe(false);
  });

  it('lets exactly one of many writers racing over a stale lock win', async () => {
    for (let round = 0; round < 5; round++) {
      const store = newStore();
      await store.put('cas/r', 'v0');
      const lock = path.join(
        store.root,
        '.mp-tmp',
        `${createHash('sha256').update('cas/r').digest('hex')}.lock`,
      );
      writeFileSync(lock, '');
      const old = new Date(Date.now() - 120_000);
      utimesSync(lock, old, old);
      const etag = (await store.get('cas/r'))!.etag;
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => store.put('cas/r', `w${i}`, { ifMatch: etag })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(readdirSync(path.join(store.root, '.mp-tmp'))).toEqual([]);
    }
  });

  it('serialises compare-and-swap writers: of many racing with one etag, one wins', async () => {
    const store = newStore();
    await store.put('cas/q', 'v0');
    const etag = (await store.get('cas/q'))!.etag;
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => store.put('cas/q', `w${i}`, { ifMatch: etag })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[])
      expect(r.reason).toBeInstanceOf(PreconditionFailedError);
  });

  it('removes folders emptied by deletes, but not the store itself', async () => {
    const store = newStore();
    await store.put('1.0.0-abcdef0/model.zip', 'x');
    await store.put('1.0.0-abcdef0/sub/manifest.json', 'x');
    await store.deleteMany(['1.0.0-abcdef0/model.zip', '1.0.0-abcdef0/sub/manifest.json']);
    expect(existsSync(path.join(store.root, '1.0.0-abcdef0'))).toBe(false);
    expect(existsSync(store.root)).toBe(true);
  });

  it('gives file:// URIs for keys and for folder prefixes', () => {
    const store = newStore();
    expect(store.uri('1.0.0-abcdef0/model.zip')).toBe(`file://${store.root}/1.0.0-abcdef0/model.zip`);
    expect(store.uri('1.0.0-abcdef0/')).toBe(`file://${store.root}/1.0.0-abcdef0/`);
    expect(store.uri('models/a/1.0.0-abcdef0/')).toBe(`file://${store.root}/models/a/1.0.0-abcdef0/`);
    expect(() => store.uri('../x')).toThrow(UserError);
  });

  it('encodes characters a URI cannot hold', () => {
    const store = new FsObjectStore(path.join(mkdtempSync(path.join(tmpdir(), 'mp-fs-')), 'my store'));
    expect(store.uri('a b/c')).toMatch(/\/my%20store\/a%20b\/c$/);
  });
});
