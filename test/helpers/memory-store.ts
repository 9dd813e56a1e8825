import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PreconditionFailedError } from '../../src/core/errors';
import type { ObjectInfo, ObjectStore, PutOptions, StoredObject, UploadOptions } from '../../src/core/ports';

interface Entry {
  body: Buffer;
  etag: string;
  lastModified: Date;
  /** Counts writes, like S3's VersionId on a versioned bucket. */
  version: number;
}

/**
 * An in-memory ObjectStore with S3's shapes: listing in pages of 1000, DeleteObjects batches of at most 1000
 * (checked), conditional writes. For scale tests (100k objects) where a real server would take minutes.
 */
export class MemoryStore implements ObjectStore {
  readonly objects = new Map<string, Entry>();
  private writes = 0;
  listPages = 0;
  deleteBatches: number[] = [];
  now: () => Date = () => new Date();

  uri(key: string): string {
    return `mem://bucket/${key}`;
  }

  /** Bulk load without the put overhead; lastModified as given. */
  load(key: string, body: Buffer | string, lastModified: Date): void {
    const b = typeof body === 'string' ? Buffer.from(body) : body;
    this.objects.set(key, {
      body: b,
      etag: `"${createHash('md5').update(b).digest('hex')}"`,
      lastModified,
      version: ++this.writes,
    });
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (let i = 0; i < keys.length; i += 1000) {
      this.listPages++;
      for (const key of keys.slice(i, i + 1000)) {
        const e = this.objects.get(key);
        if (e) yield { key, size: e.body.length, lastModified: e.lastModified, etag: e.etag };
      }
    }
  }

  async listPrefixes(prefix: string): Promise<string[]> {
    const out = new Set<string>();
    for (const k of this.objects.keys()) {
      if (!k.startsWith(prefix)) continue;
      const cut = k.indexOf('/', prefix.length);
      if (cut >= 0) out.add(k.slice(0, cut + 1));
    }
    return [...out].sort();
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const e = this.objects.get(key);
    return e && { key, size: e.body.length, lastModified: e.lastModified, etag: e.etag };
  }

  async get(key: string): Promise<{ body: Buffer; etag?: string } | undefined> {
    const e = this.objects.get(key);
    return e && { body: e.body, etag: e.etag };
  }

  async put(key: string, body: Buffer | string, o: PutOptions = {}): Promise<{ etag?: string }> {
    const current = this.objects.get(key);
    if (o.ifNoneMatch && current) throw new PreconditionFailedError(key);
    if (o.ifMatch !== undefined && current?.etag !== o.ifMatch) throw new PreconditionFailedError(key);
    this.load(key, body, this.now());
    return { etag: this.objects.get(key)!.etag };
  }

  async uploadFile(
    key: string,
    file: string,
    o: UploadOptions = {},
  ): Promise<StoredObject & { sha256?: string }> {
    const body = await fs.readFile(file);
    await this.put(key, body);
    const sha256 = o.sha256 ? createHash('sha256').update(body).digest('hex') : undefined;
    return { ...(await this.stat(key))!, sha256 };
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    const e = this.objects.get(key);
    return e && { size: e.body.length, etag: e.etag, versionId: String(e.version) };
  }

  async downloadFile(key: string, dest: string): Promise<{ size: number }> {
    const e = this.objects.get(key);
    if (!e) throw new Error(`object ${key} does not exist`);
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.writeFile(dest, e.body);
    return { size: e.body.length };
  }

  async deleteMany(keys: string[]): Promise<{ deleted: number; requests: number }> {
    let requests = 0;
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      this.deleteBatches.push(batch.length);
      requests++;
      for (const k of batch) this.objects.delete(k);
    }
    return { deleted: keys.length, requests };
  }
}
