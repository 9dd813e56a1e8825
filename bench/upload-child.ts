/**
 * One upload through S3ObjectStore in its own process, so the upload benchmark can read this process's
 * peak memory alone. Argument: JSON {endpoint, bucket, key, file, partSize?, concurrency?, hash?}.
 * hash: 'shared' = uploadFile with its own sha256 from the same read (train's path since issue 19);
 * 'separate' = uploadFile and a sha256 stream of the file side by side (train's path before).
 * Prints JSON {ms, size, maxRssMb} on stdout.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { S3ObjectStore } from '../src/adapters/aws/s3-store';
import { tuneHeap } from '../src/adapters/system/heap';

interface Job {
  endpoint: string;
  bucket: string;
  key: string;
  file: string;
  partSize?: number;
  concurrency?: number;
  hash?: 'shared' | 'separate';
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function main(): Promise<void> {
  tuneHeap(); // as the CLI does
  const job = JSON.parse(process.argv[2] ?? '') as Job;
  const store = new S3ObjectStore({
    bucket: job.bucket,
    region: 'us-east-1',
    endpoint: job.endpoint,
    upload: { partSize: job.partSize, concurrency: job.concurrency },
  });
  const t0 = process.hrtime.bigint();
  const r =
    job.hash === 'separate'
      ? (await Promise.all([store.uploadFile(job.key, job.file), sha256File(job.file)]))[0]
      : await store.uploadFile(job.key, job.file, { sha256: job.hash === 'shared' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ ms, size: r.size, maxRssMb }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
