/**
 * A checking S3 sink for the upload benchmark: enough of the S3 API for `aws s3 cp` and S3ObjectStore to
 * upload (CreateBucket, PutObject, multipart create / part / complete / abort, HeadObject, DeleteObject).
 * It keeps each object's size and CRC32, not its bytes, and checks what a real store checks: every part's
 * CRC32 against its x-amz-checksum-crc32 header, Content-Length, part ETags and order, the 5 MiB minimum
 * part size. moto does far more work per byte than S3 (it joins the parts in memory in Python at
 * completion), so on moto both clients wait on the server; on this sink they wait on themselves.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { crc32 } from 'node:zlib';
import { serveS3, xmlError } from './s3-server';

const MIN_PART = 5 * 1024 * 1024;
const PACE_QUANTUM = 1024 * 1024;

interface Received {
  size: number;
  crc: number;
}

interface Upload {
  bucket: string;
  key: string;
  checksumAlgorithm?: string;
  parts: Map<number, Received & { etag: string }>;
}

interface StoredObject {
  size: number;
  etag: string;
  checksumCrc32?: string;
}

function crcBase64(value: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b.toString('base64');
}

/**
 * A link of `bytesPerSecond` shared by every request, as a network path to a remote store is: each chunk
 * read waits until the link would have carried it, so the socket fills and TCP slows the client down.
 */
export class PacedLink {
  private free = performance.now();

  constructor(readonly bytesPerSecond: number) {}

  async carry(bytes: number): Promise<void> {
    const now = performance.now();
    this.free = Math.max(now, this.free) + (bytes / this.bytesPerSecond) * 1000;
    const wait = this.free - now;
    if (wait > 2) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** Reads the body, counting bytes and their CRC32; keeps the bytes only when asked (XML bodies). */
async function receive(
  req: IncomingMessage,
  keep: boolean,
  link?: PacedLink,
): Promise<Received & { text: string }> {
  let size = 0;
  let crc = 0;
  const kept: Buffer[] = [];
  // the link is asked a MiB at a time: a timer per 16 KiB TLS record would cost the sink twice its CPU
  let uncarried = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    crc = crc32(chunk, crc);
    if (keep) kept.push(chunk);
    uncarried += chunk.length;
    if (link && uncarried >= PACE_QUANTUM) {
      await link.carry(uncarried);
      uncarried = 0;
    }
  }
  if (link && uncarried > 0) await link.carry(uncarried);
  return { size, crc, text: keep ? Buffer.concat(kept).toString('utf8') : '' };
}

/** Checks a received body against Content-Length and the CRC32 header; answers the error itself. */
function bodyIsWhole(req: IncomingMessage, res: ServerResponse, got: Received): boolean {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) !== got.size) {
    xmlError(res, 400, 'IncompleteBody', `got ${got.size} bytes, Content-Length says ${declared}`);
    return false;
  }
  const sent = req.headers['x-amz-checksum-crc32'];
  if (typeof sent === 'string' && sent !== crcBase64(got.crc)) {
    xmlError(res, 400, 'BadDigest', `CRC32 ${sent} does not match the body (${crcBase64(got.crc)})`);
    return false;
  }
  return true;
}

export interface S3Sink {
  endpoint: string;
  /** Objects the sink holds, by "bucket/key". */
  objects: ReadonlyMap<string, StoredObject>;
  stop(): Promise<void>;
}

/**
 * With `tls`, it serves https (as S3 does), so the clients send unsigned payloads as they do to S3. With
 * `paceMiBps`, part and object bodies are read no faster than a link of that many MiB/s (a remote store).
 */
export async function startS3Sink(
  tls?: { key: string; cert: string },
  o: { paceMiBps?: number } = {},
): Promise<S3Sink> {
  const link = o.paceMiBps ? new PacedLink(o.paceMiBps * 1024 * 1024) : undefined;
  const uploads = new Map<string, Upload>();
  const objects = new Map<string, StoredObject>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://sink');
    const [bucket, ...rest] = url.pathname.slice(1).split('/');
    const key = decodeURIComponent(rest.join('/'));
    const q = url.searchParams;
    const method = req.method ?? 'GET';

    if (!key) {
      await receive(req, false);
      if (method === 'PUT' || method === 'HEAD') res.writeHead(200).end();
      else xmlError(res, 501, 'NotImplemented', `${method} on a bucket`);
      return;
    }
    const objectId = `${bucket}/${key}`;

    if (method === 'POST' && q.has('uploads')) {
      await receive(req, false);
      const uploadId = randomBytes(12).toString('hex');
      const algorithm = req.headers['x-amz-checksum-algorithm'];
      uploads.set(uploadId, {
        bucket,
        key,
        checksumAlgorithm: typeof algorithm === 'string' ? algorithm.toUpperCase() : undefined,
        parts: new Map(),
      });
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>${bucket}</Bucket>` +
          `<Key>${key}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`,
      );
      return;
    }

    const uploadId = q.get('uploadId');
    const upload = uploadId ? uploads.get(uploadId) : undefined;
    if (uploadId && (!upload || upload.bucket !== bucket || upload.key !== key)) {
      await receive(req, false);
      xmlError(res, 404, 'NoSuchUpload', `no upload ${uploadId} for ${objectId}`);
      return;
    }

    if (method === 'PUT' && upload) {
      const number = Number(q.get('partNumber'));
      const got = await receive(req, false, link);
      if (!bodyIsWhole(req, res, got)) return;
      const etag = `"${got.crc.toString(16)}-${got.size}"`;
      upload.parts.set(number, { ...got, etag });
      res.writeHead(200, { etag, 'x-amz-checksum-crc32': crcBase64(got.crc) }).end();
      return;
    }

    if (method === 'POST' && upload) {
      const { text } = await receive(req, true);
      const listed = [...text.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
        number: Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(m[1])?.[1]),
        etag: /<ETag>(.*?)<\/ETag>/.exec(m[1])?.[1]?.replace(/&quot;/g, '"'),
      }));
      if (listed.length === 0) return xmlError(res, 400, 'MalformedXML', 'no parts listed');
      let size = 0;
      const partCrcs: Buffer[] = [];
      for (const [i, p] of listed.entries()) {
        const part = upload.parts.get(p.number);
        // S3 takes a part's ETag with or without its quotes (rclone sends it bare)
        if (!part || part.etag.replace(/"/g, '') !== p.etag?.replace(/"/g, ''))
          return xmlError(res, 400, 'InvalidPart', `part ${p.number} was not uploaded with ETag ${p.etag}`);
        if (i > 0 && listed[i - 1].number >= p.number)
          return xmlError(res, 400, 'InvalidPartOrder', 'parts are not in ascending order');
        if (i < listed.length - 1 && part.size < MIN_PART)
          return xmlError(res, 400, 'EntityTooSmall', `part ${p.number} has ${part.size} bytes`);
        size += part.size;
        partCrcs.push(Buffer.from(crcBase64(part.crc), 'base64'));
      }
      const checksumCrc32 =
        upload.checksumAlgorithm === 'CRC32'
          ? `${crcBase64(crc32(Buffer.concat(partCrcs)))}-${listed.length}`
          : undefined;
      const etag = `"${randomBytes(16).toString('hex')}-${listed.length}"`;
      objects.set(objectId, { size, etag, checksumCrc32 });
      uploads.delete(uploadId!);
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>${bucket}</Bucket>` +
          `<Key>${key}</Key><ETag>${etag.replace(/"/g, '&quot;')}</ETag>` +
          (checksumCrc32 ? `<ChecksumCRC32>${checksumCrc32}</ChecksumCRC32>` : '') +
          `</CompleteMultipartUploadResult>`,
      );
      return;
    }

    if (method === 'DELETE' && upload) {
      uploads.delete(uploadId!);
      res.writeHead(204).end();
      return;
    }

    if (method === 'PUT') {
      const got = await receive(req, false, link);
      if (!bodyIsWhole(req, res, got)) return;
      const etag = `"${got.crc.toString(16)}-${got.size}"`;
      const checksumCrc32 = req.headers['x-amz-checksum-crc32'] ? crcBase64(got.crc) : undefined;
      objects.set(objectId, { size: got.size, etag, checksumCrc32 });
      res.writeHead(200, { etag, ...(checksumCrc32 ? { 'x-amz-checksum-crc32': checksumCrc32 } : {}) }).end();
      return;
    }

    await receive(req, false);
    const found = objects.get(objectId);
    if (method === 'HEAD') {
      if (!found) res.writeHead(404).end();
      else res.writeHead(200, { 'content-length': found.size, etag: found.etag }).end();
      return;
    }
    if (method === 'DELETE') {
      objects.delete(objectId);
      res.writeHead(204).end();
      return;
    }
    xmlError(res, 501, 'NotImplemented', `${method} ${url.pathname}${url.search} is not part of the sink`);
  };

  const { endpoint, stop } = await serveS3(handle, tls);
  return {
    endpoint,
    objects,
    stop,
  };
}
