import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PreconditionFailedError } from '../../core/errors';
import type {
  DownloadOptions,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoredChecksum,
  StoredObject,
  UploadOptions,
} from '../../core/ports';
import { bindAbortSignal, boundedClientConfig, type AwsTimeouts } from './client-config';
import { describeAwsError } from './errors';
import { DEFAULT_UPLOAD_SETTINGS, uploadFileToS3, type FileUploadSettings } from './file-upload';
import { DEFAULT_DOWNLOAD_SETTINGS, downloadFileFromS3, type FileDownloadSettings } from './file-download';

export interface S3StoreOptions {
  bucket: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  /** How large model files go up: part size, parts in flight, checksums (see file-upload.ts). */
  upload?: Partial<FileUploadSettings>;
  /** How large files come down: range size, ranges in flight (see file-download.ts). */
  download?: Partial<FileDownloadSettings>;
  /** Connection and response timeouts and tries per call (defaults: client-config.ts). */
  timeouts?: Partial<AwsTimeouts>;
  /** The command's abort signal: every call but cleanup ends when it fires. */
  signal?: AbortSignal;
}

const DELETE_BATCH = 1000;

function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

function isPreconditionFailure(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  // 409 ConditionalRequestConflict: a concurrent conditional write won the race
  return (
    e?.name === 'PreconditionFailed' ||
    e?.name === 'ConditionalRequestConflict' ||
    e?.$metadata?.httpStatusCode === 412 ||
    e?.$metadata?.httpStatusCode === 409
  );
}

/**
 * The SDK's own logger: silent like its default NoOpLogger (failures reach us as exceptions), but set, so
 * the SDK does not fall back to console.warn for "non-retryable streaming request" on every failed part:
 * file-upload.ts retries parts from disk itself. Other warnings still reach stderr.
 */
const sdkLogger: NonNullable<S3ClientConfig['logger']> = {
  debug: () => undefined,
  info: () => undefined,
  warn: (...args: unknown[]) => {
    if (!/non-retryable streaming request/.test(String(args[0]))) console.warn(...args);
  },
  error: () => undefined,
};

export function s3ClientConfig(o: S3StoreOptions): S3ClientConfig {
  return {
    ...boundedClientConfig(o.timeouts),
    logger: sdkLogger,
    region: o.region,
    endpoint: o.endpoint,
    forcePathStyle: o.forcePathStyle ?? Boolean(o.endpoint),
    // checksums only where S3 requires them; S3-compatible stores reject unknown checksum headers
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // No `Expect: 100-continue` on bodies over 2 MiB: for such requests the SDK opens a new connection on
    // a throwaway agent (no keep-alive), so every upload part paid a TLS handshake on both ends (129
    // connections for a 1 GiB upload, about a tenth of our CPU and more of a small server's). Without it,
    // parts reuse the client's kept-alive connections (8 for 8 in flight); a refused part costs its bytes.
    expectContinueHeader: false,
  };
}

const CHECKSUM_FIELDS = [
  ['CRC64NVME', 'ChecksumCRC64NVME'],
  ['CRC32', 'ChecksumCRC32'],
  ['CRC32C', 'ChecksumCRC32C'],
  ['SHA256', 'ChecksumSHA256'],
  ['SHA1', 'ChecksumSHA1'],
] as const;

/** The checksum a HeadObject response carries, if any; a `-<parts>` suffix marks a composite one. */
function checksumOf(r: HeadObjectCommandOutput): StoredChecksum | undefined {
  for (const [algorithm, field] of CHECKSUM_FIELDS) {
    const value = r[field];
    if (!value) continue;
    const type =
      r.ChecksumType === 'FULL_OBJECT' || r.ChecksumType === 'COMPOSITE'
        ? r.ChecksumType
        : /-\d+$/.test(value)
          ? 'COMPOSITE'
          : undefined;
    return { algorithm, type, value };
  }
  return undefined;
}

export class S3ObjectStore implements ObjectStore {
  readonly client: S3Client;
  readonly bucket: string;
  private readonly upload: FileUploadSettings;
  private readonly download: FileDownloadSettings;
  private readonly signal: AbortSignal | undefined;

  constructor(o: S3StoreOptions, client?: S3Client) {
    this.bucket = o.bucket;
    this.client = client ?? bindAbortSignal(new S3Client(s3ClientConfig(o)), o.signal);
    // a setting left undefined keeps its default (a plain spread would overwrite it with undefined)
    const given = Object.entries(o.upload ?? {}).filter(([, v]) => v !== undefined);
    this.upload = { ...DEFAULT_UPLOAD_SETTINGS, ...Object.fromEntries(given) };
    const down = Object.entries(o.download ?? {}).filter(([, v]) => v !== undefined);
    this.download = { ...DEFAULT_DOWNLOAD_SETTINGS, ...Object.fromEntries(down) };
    this.signal = o.signal;
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        );
      } catch (err) {
        throw describeAwsError(err, `listing ${this.uri(prefix)}`);
      }
      for (const o of page.Contents ?? []) {
        yield { key: o.Key!, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0), etag: o.ETag };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async listPrefixes(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            Delimiter: '/',
            ContinuationToken: token,
          }),
        );
      } catch (err) {
        throw describeAwsError(err, `listing ${this.uri(prefix)}`);
      }
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) out.push(p.Prefix);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: r.ContentLength ?? 0, lastModified: r.LastModified ?? new Date(0), etag: r.ETag };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw describeAwsError(err, `reading ${this.uri(key)}`);
    }
  }

  /** HeadObject with ChecksumMode ENABLED: the object's checksum, ETag and VersionId, no bytes. */
  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      const r = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }),
      );
      return { size: r.ContentLength ?? 0, etag: r.ETag, versionId: r.VersionId, checksum: checksumOf(r) };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw describeAwsError(err, `reading ${this.uri(key)}`);
    }
  }

  async get(key: string): Promise<{ body: Buffer; etag?: string } | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const bytes = await r.Body!.transformToByteArray();
      return { body: Buffer.from(bytes), etag: r.ETag };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw describeAwsError(err, `reading ${this.uri(key)}`);
    }
  }

  async put(key: string, body: Buffer | string, options: PutOptions = {}): Promise<{ etag?: string }> {
    try {
      const r = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: typeof body === 'string' ? Buffer.from(body) : body,
          ContentType: options.contentType,
          IfNoneMatch: options.ifNoneMatch ? '*' : undefined,
          IfMatch: options.ifMatch,
        }),
      );
      return { etag: r.ETag };
    } catch (err) {
      if ((options.ifNoneMatch || options.ifMatch !== undefined) && isPreconditionFailure(err)) {
        throw new PreconditionFailedError(key);
      }
      throw describeAwsError(err, `writing ${this.uri(key)}`);
    }
  }

  async uploadFile(
    key: string,
    file: string,
    options: UploadOptions = {},
  ): Promise<StoredObject & { sha256?: string }> {
    try {
      return await uploadFileToS3(
        this.client,
        this.bucket,
        key,
        file,
        { ...this.upload, onProgress: options.onProgress },
        { ...options, signal: this.signal },
      );
    } catch (err) {
      throw describeAwsError(err, `uploading ${file} to ${this.uri(key)}`);
    }
  }

  async downloadFile(
    key: string,
    dest: string,
    options: DownloadOptions = {},
  ): Promise<{ size: number; sha256?: string }> {
    await fs.mkdir(path.dirname(path.resolve(dest)), { recursive: true });
    try {
      return await downloadFileFromS3(this.client, this.bucket, key, dest, this.download, {
        ...options,
        signal: this.signal,
      });
    } catch (err) {
      if (isMissing(err)) throw new Error(`object ${this.uri(key)} does not exist`, { cause: err });
      throw describeAwsError(err, `downloading ${this.uri(key)}`);
    }
  }

  async deleteMany(keys: string[]): Promise<{ deleted: number; requests: number }> {
    let deleted = 0;
    let requests = 0;
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      requests++;
      let r;
      try {
        r = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
      } catch (err) {
        throw describeAwsError(err, `deleting from ${this.uri('')}`);
      }
      if (r.Errors && r.Errors.length > 0) {
        const first = r.Errors[0];
        throw describeAwsError(
          new Error(
            `${r.Errors.length} keys not deleted, first ${first.Key}: ${first.Code} ${first.Message}`,
          ),
          `deleting from ${this.uri('')}`,
        );
      }
      deleted += batch.length;
    }
    return { deleted, requests };
  }
}
