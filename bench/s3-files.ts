/**
 * A plain file server that speaks enough S3 for downloads (bench only): the objects of bucket B are the
 * files under <root>/B/, served from disk with Range, If-Match and If-None-Match, as a static web server
 * would. moto reads the whole object for every ranged GET, which punishes clients that download in parallel
 * ranges (`aws s3 cp` and ours alike); this server reads only the bytes asked for, as S3 does.
 * GetObject, HeadObject, PutObject (single part), DeleteObject, CreateBucket, ListObjectsV2 (one page).
 * With `tls`, it serves https (as S3 does), so peers send unsigned payloads as they would to S3.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs, type Stats } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { serveS3, xmlError } from './s3-server';

export interface S3Files {
  endpoint: string;
  /** The folder whose subfolders are the buckets. */
  root: string;
  /** Object bytes sent so far (GET bodies), for the bench's own checks. */
  bytesSent(): number;
  stop(): Promise<void>;
}

const etagOf = (st: Stats): string => `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

async function walk(dir: string, rel: string, out: { key: string; st: Stats }[]): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const n of names.sort()) {
    if (n.startsWith('.mp-') || n.startsWith('.s3files-')) continue;
    const p = path.join(dir, n);
    const st = await fs.stat(p);
    if (st.isDirectory()) await walk(p, `${rel}${n}/`, out);
    else out.push({ key: rel + n, st });
  }
}

/** Bytes [start, end] (inclusive, as HTTP says) of a Range header, or undefined for the whole object. */
function rangeOf(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'bad' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'bad';
  return { start, end };
}

export async function startS3Files(root: string, tls?: { key: string; cert: string }): Promise<S3Files> {
  let sent = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://files');
    const [bucket, ...rest] = url.pathname.slice(1).split('/');
    const key = decodeURIComponent(rest.join('/'));
    const method = req.method ?? 'GET';
    const bucketDir = path.join(root, bucket);
    if (!bucket || bucket.startsWith('.') || key.split('/').some((p) => p === '..' || p === '.'))
      return xmlError(res, 400, 'InvalidRequest', 'bad path');

    if (!key) {
      if (method === 'PUT') {
        for await (const _ of req) void _;
        await fs.mkdir(bucketDir, { recursive: true });
        return void res.writeHead(200).end();
      }
      if (method === 'HEAD') return void res.writeHead(200).end();
      if (method === 'GET' && url.searchParams.get('list-type') === '2') {
        const prefix = url.searchParams.get('prefix') ?? '';
        const delimiter = url.searchParams.get('delimiter') ?? '';
        const all: { key: string; st: Stats }[] = [];
        await walk(bucketDir, '', all);
        const contents: string[] = [];
        const prefixes = new Set<string>();
        for (const o of all) {
          if (!o.key.startsWith(prefix)) continue;
          const cut = delimiter ? o.key.indexOf(delimiter, prefix.length) : -1;
          if (cut >= 0) prefixes.add(o.key.slice(0, cut + delimiter.length));
          else
            contents.push(
              `<Contents><Key>${xml(o.key)}</Key><LastModified>${o.st.mtime.toISOString()}</LastModified>` +
                `<ETag>${xml(etagOf(o.st))}</ETag><Size>${o.st.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
            );
        }
        res.writeHead(200, { 'content-type': 'application/xml' });
        return void res.end(
          `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${bucket}</Name><Prefix>${xml(prefix)}</Prefix>` +
            `<KeyCount>${contents.length + prefixes.size}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>` +
            contents.join('') +
            [...prefixes].map((p) => `<CommonPrefixes><Prefix>${xml(p)}</Prefix></CommonPrefixes>`).join('') +
            `</ListBucketResult>`,
        );
      }
      return xmlError(res, 501, 'NotImplemented', `${method} on a bucket`);
    }

    const file = path.join(bucketDir, ...key.split('/'));
    const st = await fs.stat(file).catch(() => undefined);
    const found = st?.isFile() ? st : undefined;

    if (method === 'PUT') {
      if (url.searchParams.has('uploadId') || url.searchParams.has('partNumber'))
        return xmlError(res, 501, 'NotImplemented', 'multipart uploads (use the checking sink)');
      if (req.headers['if-none-match'] === '*' && found) {
        for await (const _ of req) void _;
        return xmlError(res, 412, 'PreconditionFailed', 'the object exists');
      }
      const ifMatch = req.headers['if-match'];
      if (ifMatch && (!found || etagOf(found) !== ifMatch)) {
        for await (const _ of req) void _;
        return xmlError(res, 412, 'PreconditionFailed', 'ETag differs');
      }
      await fs.mkdir(path.dirname(file), { recursive: true });
      const tmp = path.join(bucketDir, `.s3files-${randomBytes(6).toString('hex')}`);
      await pipeline(req, createWriteStream(tmp));
      await fs.rename(tmp, file);
      return void res.writeHead(200, { etag: etagOf(await fs.stat(file)) }).end();
    }
    if (method === 'DELETE') {
      await fs.rm(file, { force: true });
      return void res.writeHead(204).end();
    }
    if (method !== 'GET' && method !== 'HEAD') return xmlError(res, 501, 'NotImplemented', method);
    if (!found) {
      if (method === 'HEAD') return void res.writeHead(404).end();
      return xmlError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
    }
    const etag = etagOf(found);
    const ifMatch = req.headers['if-match'];
    if (ifMatch && ifMatch !== etag) return xmlError(res, 412, 'PreconditionFailed', 'ETag differs');
    const headers = {
      etag,
      'last-modified': found.mtime.toUTCString(),
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
    };
    const range = method === 'GET' ? rangeOf(req.headers.range, found.size) : undefined;
    if (range === 'bad') return xmlError(res, 416, 'InvalidRange', 'The requested range is not satisfiable');
    if (method === 'HEAD') return void res.writeHead(200, { ...headers, 'content-length': found.size }).end();
    const { start, end } = range ?? { start: 0, end: found.size - 1 };
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'content-length': end - start + 1,
      ...(range ? { 'content-range': `bytes ${start}-${end}/${found.size}` } : {}),
    });
    if (found.size === 0) return void res.end();
    const body = createReadStream(file, { start, end, highWaterMark: 1024 * 1024 });
    body.on('data', (c: string | Buffer) => {
      sent += c.length;
    });
    await pipeline(body, res);
  };

  const { endpoint, stop } = await serveS3(handle, tls);
  return {
    endpoint,
    root,
    bytesSent: () => sent,
    stop,
  };
}
