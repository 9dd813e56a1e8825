/**
 * One upload through S3ObjectStore in its own process, so the upload benchmark can read this process's
 * peak memory alone. Argument: JSON {endpoint, bucket, key, file, partSize?, concurrency?}.
 * Prints JSON {ms, size, maxRssMb} on stdout.
 */
import { S3ObjectStore } from '../src/adapters/aws/s3-store';

interface Job {
  endpoint: string;
  bucket: string;
  key: string;
  file: string;
  partSize?: number;
  concurrency?: number;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as Job;
  const store = new S3ObjectStore({
    bucket: job.bucket,
    region: 'us-east-1',
    endpoint: job.endpoint,
    upload: { partSize: job.partSize, concurrency: job.concurrency },
  });
  const t0 = process.hrtime.bigint();
  const r = await store.uploadFile(job.key, job.file);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ ms, size: r.size, maxRssMb }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
