import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { joinKey } from '../../src/core/identity';
import { storedRecord, type Manifest, type ManifestFile } from '../../src/core/manifest';
import type { ObjectStore } from '../../src/core/ports';

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

export interface FixtureOptions {
  /** Bytes of model.zip; default: a few KiB derived from the folder name. */
  model?: Buffer;
  /** Written as benchmark_results.json and listed in the manifest. */
  benchmark?: Record<string, unknown>;
  /** A config file stored beside the model, listed in the manifest and recorded as `config`. */
  config?: { path: string; content: string };
  inputs?: { key: string; sha256?: string; size?: number }[];
  /** Zero-byte environment markers to write after the manifest. */
  markers?: string[];
  /** Leave out the manifest (an interrupted train). */
  noManifest?: boolean;
  /**
   * Upload the files with ObjectStore.uploadFile and record what the store reported in the manifest, as
   * train does; without it the folder looks written before store checksums were recorded.
   */
  recorded?: boolean;
  /** Extra manifest fields (e.g. git, build). */
  extra?: Partial<Manifest>;
}

export interface FixtureModel {
  folder: string;
  manifest: Manifest;
  model: Buffer;
}

/**
 * Writes a model folder the way train does (files first, manifest last) with a valid manifest, so tests of
 * promote/rotate/status/download need no training run. `folder` is a key prefix ending in `<version>-<sha7>/`.
 */
export async function putModel(
  store: ObjectStore,
  folder: string,
  o: FixtureOptions = {},
): Promise<FixtureModel> {
  const dir = folder.endsWith('/') ? folder : folder + '/';
  const name = dir.slice(0, -1).split('/').pop()!;
  const cut = name.lastIndexOf('-');
  const version = name.slice(0, cut);
  const sha7 = name.slice(cut + 1);
  const model = o.model ?? Buffer.from(`PK-fake-zip:${name}:`.repeat(200));
  const files: { name: string; bytes: Buffer }[] = [{ name: 'model.zip', bytes: model }];
  if (o.benchmark)
    files.push({ name: 'benchmark_results.json', bytes: Buffer.from(JSON.stringify(o.benchmark)) });
  if (o.config) files.push({ name: o.config.path.split('/').pop()!, bytes: Buffer.from(o.config.content) });
  const entries: ManifestFile[] = [];
  for (const f of files) {
    const entry: ManifestFile = { name: f.name, size: f.bytes.length, sha256: sha256(f.bytes) };
    if (o.recorded) entry.stored = storedRecord(await uploadBytes(store, joinKey(dir, f.name), f.bytes));
    else await store.put(joinKey(dir, f.name), f.bytes);
    entries.push(entry);
  }
  const manifest: Manifest = {
    schemaVersion: 1,
    model: { name: 'search', version, sha: sha7.padEnd(40, '0') },
    files: entries,
    ...(o.config ? { config: { path: o.config.path, sha256: sha256(o.config.content) } } : {}),
    ...(o.inputs ? { inputs: o.inputs } : {}),
    git: { sha: sha7.padEnd(40, '0'), branch: 'main' },
    build: {
      backend: 'local',
      startedAt: '2024-01-01T00:00:00.000Z',
      finishedAt: '2024-01-01T01:00:00.000Z',
      actor: 'fixture',
    },
    ...(o.benchmark ? { benchmark: { passed: true, file: 'benchmark_results.json' } } : {}),
    ...o.extra,
  } as Manifest;
  if (!o.noManifest) await store.put(dir + 'manifest.json', JSON.stringify(manifest, null, 2));
  for (const m of o.markers ?? []) await store.put(dir + m, Buffer.alloc(0));
  return { folder: dir, manifest, model };
}

/** Every key under prefix with its size and etag: compare before/after to prove nothing changed. */
export async function snapshot(store: ObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) {
    const got = await store.get(o.key);
    out.push(`${o.key} ${o.size} ${got ? sha256(got.body) : '-'}`);
  }
  return out;
}

/** Writes bytes to a key through ObjectStore.uploadFile (a temporary file), as train uploads. */
export async function uploadBytes(store: ObjectStore, key: string, bytes: Buffer | string) {
  const dir = mkdtempSync(path.join(tmpdir(), 'mp-upload-'));
  try {
    const file = path.join(dir, 'file');
    writeFileSync(file, bytes);
    return await store.uploadFile(key, file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The store, with every read of an object's bytes (get, downloadFile) recorded by key. */
export function readCounting(store: ObjectStore): { store: ObjectStore; reads: string[] } {
  const reads: string[] = [];
  const counted = Object.create(store) as ObjectStore;
  counted.get = (key) => {
    reads.push(key);
    return store.get(key);
  };
  counted.downloadFile = (key, dest) => {
    reads.push(key);
    return store.downloadFile(key, dest);
  };
  return { store: counted, reads };
}
