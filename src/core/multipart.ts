import { UserError } from './errors';

const MiB = 1024 * 1024;

/** S3's multipart limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html). */
export const S3_LIMITS = {
  minPartSize: 5 * MiB,
  maxPartSize: 5 * 1024 * MiB,
  maxParts: 10_000,
  maxObjectSize: 5 * 1024 * 1024 * MiB,
} as const;

export interface PartRange {
  /** 1-based, as S3 numbers parts. */
  number: number;
  start: number;
  /** Bytes in this part; only the last part may be shorter than the part size. */
  length: number;
}

export interface PartPlan {
  partSize: number;
  parts: PartRange[];
}

/**
 * How a file of `size` bytes is cut into multipart ranges. The wanted part size is raised to S3's
 * minimum, and grown in whole MiB when the file would need more than 10,000 parts, so a large model
 * never fails half-way on the part limit.
 */
export function planParts(size: number, wantedPartSize: number, limits = S3_LIMITS): PartPlan {
  if (!Number.isSafeInteger(size) || size < 0)
    throw new Error(`file size must be a whole number, got ${size}`);
  if (!(wantedPartSize > 0) || !Number.isFinite(wantedPartSize))
    throw new Error(`part size must be a positive number of bytes, got ${wantedPartSize}`);
  if (size > limits.maxObjectSize) {
    throw new UserError(
      `the file is ${size} bytes; S3 stores at most ${limits.maxObjectSize} bytes (5 TiB) in one object`,
    );
  }
  let partSize = Math.max(Math.floor(wantedPartSize), limits.minPartSize);
  if (Math.ceil(size / partSize) > limits.maxParts) {
    partSize = Math.ceil(size / limits.maxParts / MiB) * MiB;
  }
  partSize = Math.min(partSize, limits.maxPartSize);
  const parts: PartRange[] = [];
  for (let start = 0, n = 1; start < size; start += partSize, n++) {
    parts.push({ number: n, start, length: Math.min(partSize, size - start) });
  }
  return { partSize, parts };
}
