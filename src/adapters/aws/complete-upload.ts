import {
  CompleteMultipartUploadCommand,
  HeadObjectCommand,
  type CompleteMultipartUploadCommandOutput,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';

/**
 * How long CompleteMultipartUpload may go without a byte of answer. S3 can take minutes to join a large
 * object and keeps the connection alive with spaces meanwhile; moto and other S3-compatible stores send
 * nothing until they are done (moto: about a minute for 4 GiB), which the 30 s of other calls would cut.
 */
export const COMPLETE_TIMEOUT_MS = 15 * 60_000;

/** Some S3-compatible stores report a composite checksum without its `-<parts>` suffix. */
export function sameCompositeChecksum(reported: string, expected: string): boolean {
  const [value, parts] = reported.split('-');
  const [wantValue, wantParts] = expected.split('-');
  return value === wantValue && (parts === undefined || parts === wantParts);
}

/** The ETag S3 gives a multipart object: the MD5 of the parts' MD5s, then `-<parts>` (not with SSE-KMS). */
export function multipartEtag(parts: CompletedPart[]): string {
  const md5s = parts.map((p) => Buffer.from((p.ETag ?? '').replace(/"/g, ''), 'hex'));
  return `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${parts.length}"`;
}

/**
 * Completes a multipart upload. A try whose answer is lost (a timeout, a reset) may have completed it all
 * the same, and its retry then finds no upload (NoSuchUpload, or a server error from stores that do not say
 * so): when the call fails, the object at the key is the answer if it is what the parts make (its size,
 * and the multipart ETag or the composite CRC32 of these parts), so a finished upload is not reported as
 * failed and retried from scratch.
 */
export async function completeUpload(
  client: S3Client,
  input: { Bucket: string; Key: string; UploadId: string; Parts: CompletedPart[] },
  expected: { size: number; compositeCrc32?: string },
): Promise<CompleteMultipartUploadCommandOutput> {
  try {
    return await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: input.Bucket,
        Key: input.Key,
        UploadId: input.UploadId,
        MultipartUpload: { Parts: input.Parts },
      }),
      { requestTimeout: COMPLETE_TIMEOUT_MS },
    );
  } catch (err) {
    const found = await client
      .send(new HeadObjectCommand({ Bucket: input.Bucket, Key: input.Key, ChecksumMode: 'ENABLED' }))
      .catch(() => undefined);
    const crc = found?.ChecksumCRC32;
    const same =
      found?.ContentLength === expected.size &&
      (found.ETag === multipartEtag(input.Parts) ||
        (crc !== undefined &&
          expected.compositeCrc32 !== undefined &&
          sameCompositeChecksum(crc, expected.compositeCrc32)));
    if (!found || !same) throw err;
    return {
      $metadata: found.$metadata,
      ETag: found.ETag,
      VersionId: found.VersionId,
      ChecksumCRC32: found.ChecksumCRC32,
    };
  }
}
