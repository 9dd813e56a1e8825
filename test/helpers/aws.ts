import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { s3ClientConfig } from '../../src/adapters/aws/s3-store';

/** Fake credentials moto accepts; set before any SDK client is built. */
export const TEST_AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_REGION: 'us-east-1',
};
Object.assign(process.env, TEST_AWS_ENV);

export function motoEndpoint(): string {
  const endpoint = process.env.MOTO_ENDPOINT;
  if (!endpoint)
    throw new Error('MOTO_ENDPOINT is not set: integration tests run under the jest integration project');
  return endpoint;
}

export function s3Client(): S3Client {
  return new S3Client(s3ClientConfig({ bucket: '', region: 'us-east-1', endpoint: motoEndpoint() }));
}

/** A new, empty bucket with a unique name, so test files never see each other's objects. */
export async function newBucket(label = 'test'): Promise<string> {
  const name = `${label}-${randomBytes(6).toString('hex')}`.toLowerCase();
  await s3Client().send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

/** The base64 CRC32 S3 puts in x-amz-checksum-crc32, computed here apart from the code under test. */
export function crc32Of(bytes: Buffer): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc32(bytes));
  return b.toString('base64');
}
