import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import * as path from 'node:path';
import { S3ObjectStore, s3ClientConfig } from '../src/adapters/aws/s3-store';
import { FsObjectStore } from '../src/adapters/local/fs-store';
import { MemoryState } from '../src/adapters/system/console-logger';
import type { Logger } from '../src/core/ports';
import { runCommand } from '../src/runner';
import { configToml, TempRepo } from '../test/helpers/git-repo';
import { startSshd, type Sshd } from '../test/helpers/sshd';
import { FakeCompute, trainWithCompute, type MemoryLogger } from '../test/helpers/train-fixture';
import {
  FAKE_AWS_ENV,
  log,
  removeAtEnd,
  median,
  nowMs,
  runsOf,
  type BenchContext,
  type BenchOutput,
  type Series,
  type Verdict,
} from './lib';

/**
 * The instant workload: writes model.zip and prints its own start and end (ns), so the run can subtract
 * exactly the training command's time and nothing else.
 */
const TRAIN_COMMAND =
  's=$(date +%s%N); echo weights > model.zip; e=$(date +%s%N); echo "bench-train-ns $s $e"';

/**
 * train's default data-key; a few bytes of it keep the "bring the data" step in the measured path (an empty
 * data-key input counts as not given, so a run without data is not expressible).
 */
const DATA_KEY = 'raw_source_data.zip';
const DATA = Buffer.from('bench input\n');

/** A Logger that stamps every line, so phases can be timed from the step lines train prints. */
class StampLogger implements Logger {
  readonly lines: { t: number; line: string }[] = [];
  private add(line: string): void {
    this.lines.push({ t: nowMs(), line });
  }
  info(m: string): void {
    this.add(m);
  }
  warn(m: string): void {
    this.add(`warning: ${m}`);
  }
  error(m: string): void {
    this.add(`error: ${m}`);
  }
  debug(): void {}
  mask(): void {}
  async group<T>(title: string, fn: () => Promise<T>): Promise<T> {
    this.add(`== ${title}`);
    return fn();
  }
  // trainWithCompute wants a MemoryLogger; it only calls the Logger methods and reads .lines via text()
  text(): string {
    return this.lines.map((l) => l.line).join('\n');
  }
}

interface Timing {
  totalMs: number;
  trainCommandMs: number;
  /** Step title -> ms from its "[i/n] title" line to the next step line (or the end). */
  phases: Map<string, number>;
}

function timingOf(logger: StampLogger, t0: number, t1: number): Timing {
  const stamp = logger.lines.find((l) => l.line.startsWith('bench-train-ns '));
  if (!stamp) throw new Error(`the training command printed no timing line:\n${logger.text().slice(-2000)}`);
  const [, s, e] = stamp.line.split(' ');
  const trainCommandMs = Number(BigInt(e) - BigInt(s)) / 1e6;
  const steps = logger.lines
    .map((l) => ({ t: l.t, m: /^\[\d+\/\d+\] (.*)$/.exec(l.line) }))
    .filter((x) => x.m !== null);
  const phases = new Map<string, number>();
  if (steps.length > 0) phases.set('(before the first step)', steps[0].t - t0);
  steps.forEach((step, i) => {
    const end = i + 1 < steps.length ? steps[i + 1].t : t1;
    const title = step.m![1];
    phases.set(title, (phases.get(title) ?? 0) + end - step.t);
  });
  return { totalMs: t1 - t0, trainCommandMs, phases };
}

function phaseSeries(bench: string, variant: string, timings: Timing[]): Series[] {
  const titles: string[] = [];
  for (const t of timings) for (const k of t.phases.keys()) if (!titles.includes(k)) titles.push(k);
  return titles.map((title) => ({
    bench,
    name: `${variant} phase: ${title}`,
    unit: 'ms',
    samples: timings.map((t) => t.phases.get(title) ?? 0),
  }));
}

function trainRepo(): TempRepo {
  const repo = new TempRepo('mp-bench-train-');
  removeAtEnd(repo.dir);
  repo.write('search-config.toml', configToml('1.0.0', 'name = "search"'));
  repo.write('.gitignore', 'model.zip\n');
  repo.commit('bench model');
  return repo;
}

async function localRuns(ctx: BenchContext, runs: number): Promise<Timing[]> {
  const repo = trainRepo();
  const out: Timing[] = [];
  for (let i = 0; i < runs; i++) {
    // a fresh store each run: train refuses to overwrite a complete model
    const storeDir = mkdtempSync(path.join(ctx.tmp, 'train-store-'));
    await new FsObjectStore(storeDir).put(DATA_KEY, DATA);
    const logger = new StampLogger();
    const t0 = nowMs();
    await runCommand({
      command: 'train',
      inputs: {
        backend: 'local',
        'local-store': storeDir,
        'train-command': TRAIN_COMMAND,
      },
      env: {},
      cwd: repo.dir,
      logger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
    const t1 = nowMs();
    const model = path.join(storeDir, 'search', `1.0.0-${repo.head().slice(0, 7)}`, 'manifest.json');
    if (!existsSync(model)) throw new Error(`train on the local backend wrote no manifest (${model})`);
    out.push(timingOf(logger, t0, t1));
  }
  return out;
}

async function sshRuns(ctx: BenchContext, runs: number, sshd: Sshd): Promise<Timing[]> {
  const repo = trainRepo();
  const bucket = `bench-train-${randomBytes(4).toString('hex')}`;
  await new S3Client(s3ClientConfig({ bucket, region: 'us-east-1', endpoint: ctx.endpoint })).send(
    new CreateBucketCommand({ Bucket: bucket }),
  );
  Object.assign(process.env, FAKE_AWS_ENV);
  await new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: ctx.endpoint }).put(DATA_KEY, DATA);
  const out: Timing[] = [];
  for (let i = 0; i < runs; i++) {
    const remote = mkdtempSync(path.join(ctx.tmp, 'train-remote-'));
    const logger = new StampLogger();
    const compute = new FakeCompute('127.0.0.1');
    const t0 = nowMs();
    const r = await trainWithCompute(
      compute,
      {
        backend: 'aws',
        bucket,
        's3-endpoint': ctx.endpoint,
        region: 'us-east-1',
        // each run its own store prefix: train refuses to overwrite a complete model
        'store-prefix': `run-${i}`,
        'ami-id': 'ami-0123456789abcdef0',
        'instance-types': 'g5.xlarge',
        'ssh-user': sshd.user,
        'ssh-port': String(sshd.port),
        'ssh-host-key': sshd.hostPublicKey,
        'ssh-private-key': sshd.clientPrivateKey,
        'remote-dir': path.join(remote, 'repo'),
        'boot-timeout': '30s',
        'train-command': TRAIN_COMMAND,
      },
      repo.dir,
      { logger: logger as unknown as MemoryLogger },
    );
    const t1 = nowMs();
    if (r.error) throw new Error(`train over SSH failed: ${(r.error as Error).message}`);
    out.push(timingOf(logger, t0, t1));
  }
  return out;
}

/**
 * Orchestration overhead of train: wall time minus the training command's own time (local backend), and
 * over SSH to a real sshd on 127.0.0.1 (fake Compute, S3 on moto) minus also the wait for SSH.
 */
export async function train(ctx: BenchContext): Promise<BenchOutput> {
  const runs = runsOf(ctx, 7);
  const bench = 'train';
  const series: Series[] = [];
  const verdicts: Verdict[] = [];
  const notes: string[] = [];

  const local = await localRuns(ctx, runs);
  const localOverhead = local.map((t) => (t.totalMs - t.trainCommandMs) / 1000);
  log(`train local: overhead median ${median(localOverhead).toFixed(3)} s`);
  series.push(
    { bench, name: 'local: total', unit: 'ms', samples: local.map((t) => t.totalMs) },
    {
      bench,
      name: 'local: training command itself',
      unit: 'ms',
      samples: local.map((t) => t.trainCommandMs),
    },
    ...phaseSeries(bench, 'local', local),
  );
  verdicts.push({
    bench,
    name: 'local backend: overhead (total - training command)',
    samples: localOverhead,
    unit: 's',
    target: '< 2',
    met: median(localOverhead) < 2,
  });

  if (ctx.flags.has('no-ssh')) {
    notes.push('train: the SSH variant was skipped (--no-ssh)');
    return { series, verdicts, notes };
  }
  let sshd: Sshd | undefined;
  try {
    sshd = await startSshd();
  } catch (err) {
    notes.push(`train: SSH variant not run, sshd did not start: ${(err as Error).message.split('\n')[0]}`);
    return { series, verdicts, notes };
  }
  try {
    const ssh = await sshRuns(ctx, runs, sshd);
    // "wait until it runs" (instance boot, ~0 with the fake Compute) and "wait for SSH" are the unavoidable waits
    const waitSsh = (t: Timing): number =>
      [...t.phases].filter(([k]) => /^wait /.test(k)).reduce((n, [, v]) => n + v, 0);
    const sshOverhead = ssh.map((t) => (t.totalMs - t.trainCommandMs - waitSsh(t)) / 1000);
    log(`train ssh: overhead median ${median(sshOverhead).toFixed(3)} s`);
    series.push(
      { bench, name: 'ssh: total', unit: 'ms', samples: ssh.map((t) => t.totalMs) },
      { bench, name: 'ssh: training command itself', unit: 'ms', samples: ssh.map((t) => t.trainCommandMs) },
      ...phaseSeries(bench, 'ssh', ssh),
    );
    verdicts.push({
      bench,
      name: 'ssh to 127.0.0.1 + S3 on moto: overhead (total - training - boot/SSH waits)',
      samples: sshOverhead,
      unit: 's',
      target: '< 2',
      met: median(sshOverhead) < 2,
      note: 'no network latency: on EC2 every ssh/rsync round trip costs more',
    });
  } finally {
    await sshd.stop();
  }
  return { series, verdicts, notes };
}
