import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';

/** One measured quantity of a benchmark, one sample per run. */
export interface Series {
  bench: string;
  name: string;
  unit: string;
  samples: number[];
  note?: string;
}

/** A target the issue sets, judged on the median of per-run values. */
export interface Verdict {
  bench: string;
  name: string;
  /** Per-run values of the judged quantity (a ratio, seconds, MB ...). */
  samples: number[];
  unit: string;
  target: string;
  met: boolean | undefined;
  note?: string;
  /** 1-minute load average when its benchmark started and ended (filled in by run.ts). */
  load?: string;
}

export interface BenchOutput {
  series: Series[];
  verdicts: Verdict[];
  notes: string[];
}

export interface Stats {
  n: number;
  min: number;
  median: number;
  max: number;
}

export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return { n, min: NaN, median: NaN, max: NaN };
  const median = n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { n, min: s[0], median, max: s[n - 1] };
}

export function median(samples: number[]): number {
  return stats(samples).median;
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 10) return v.toFixed(2);
  return v.toFixed(3);
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function sizeLabel(bytes: number): string {
  return bytes >= GiB ? `${bytes / GiB} GiB` : `${bytes / MiB} MiB`;
}

export interface ProcResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Peak resident set size in MB from /usr/bin/time -v, when it ran under it. */
  peakRssMb?: number;
  /** CPU seconds (user + system, the process and the children it waited for), from /usr/bin/time -v. */
  cpuS?: number;
}

export const HAVE_GNU_TIME = existsSync('/usr/bin/time');

/**
 * Runs a command and times it from spawn to exit. With `measureRss` it runs under /usr/bin/time -v and
 * reads the child's peak RSS from its report (the report goes to a file, so the command's stderr stays its own).
 */
export async function runProc(
  cmd: string,
  args: string[],
  o: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    measureRss?: boolean;
    timeoutMs?: number;
    input?: string;
  } = {},
): Promise<ProcResult> {
  let file = cmd;
  let argv = args;
  let reportFile: string | undefined;
  if (o.measureRss && HAVE_GNU_TIME) {
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    reportFile = join(tmpdir(), `mp-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}.txt`);
    file = '/usr/bin/time';
    argv = ['-v', '-o', reportFile, cmd, ...args];
  }
  const started = process.hrtime.bigint();
  const child = spawn(file, argv, {
    cwd: o.cwd,
    env: o.env ?? process.env,
    stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (o.input !== undefined) child.stdin!.end(o.input);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  const timer = o.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), o.timeoutMs) : undefined;
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  if (timer) clearTimeout(timer);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  let peakRssMb: number | undefined;
  let cpuS: number | undefined;
  if (reportFile) {
    const { readFile, rm } = await import('node:fs/promises');
    const report = await readFile(reportFile, 'utf8').catch(() => '');
    await rm(reportFile, { force: true });
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(report);
    if (m) peakRssMb = Number(m[1]) / 1024;
    const user = /User time \(seconds\): ([\d.]+)/.exec(report);
    const sys = /System time \(seconds\): ([\d.]+)/.exec(report);
    if (user && sys) cpuS = Number(user[1]) + Number(sys[1]);
  }
  return { code, stdout, stderr, ms, peakRssMb, cpuS };
}

/** Throws with the tail of the output when a benchmarked process failed: a failed run is not a sample. */
export function mustSucceed(r: ProcResult, what: string): ProcResult {
  if (r.code !== 0) {
    const tail = (r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n');
    throw new Error(`${what} exited with ${r.code}:\n${tail}`);
  }
  return r;
}

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = nowMs();
  const value = await fn();
  return { value, ms: nowMs() - t0 };
}

/** Runs fn over items with at most `limit` in flight. */
export async function parallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]);
    }
  });
  await Promise.all(workers);
}

export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** What every benchmark gets from bench/run.ts. */
export interface BenchContext {
  /** moto_server on 127.0.0.1. */
  endpoint: string;
  smoke: boolean;
  /** --runs N: overrides every benchmark's own run count. */
  runs?: number;
  /** Repository root (where dist/, node_modules/ are). */
  root: string;
  /** Scratch folder of this run, removed at the end. */
  tmp: string;
  flags: ReadonlyMap<string, string>;
}

export function runsOf(ctx: BenchContext, full: number, smoke = 2): number {
  return ctx.runs ?? (ctx.smoke ? smoke : full);
}

export const FAKE_AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_SESSION_TOKEN: 'testing',
  AWS_REGION: 'us-east-1',
  AWS_DEFAULT_REGION: 'us-east-1',
};

/**
 * Environment for child processes: fake credentials for moto, and none of the CI or tool settings of the
 * machine running the bench (GITHUB_SHA, MODEL_PIPELINE_*, AWS_PROFILE ...) that would change what is measured.
 */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(GITHUB_|CIRCLE|MODEL_PIPELINE_|AWS_|RUNNER_|NODE_OPTIONS$|NODE_COMPILE_CACHE$|CI$)/.test(k))
      continue;
    env[k] = v;
  }
  return { ...env, ...FAKE_AWS_ENV, ...extra };
}

const leftovers: string[] = [];

/** Folders made outside BenchContext.tmp (TempRepo picks its own place), removed when the run ends. */
export function removeAtEnd(dir: string): string {
  leftovers.push(dir);
  return dir;
}

export function removeLeftovers(): void {
  for (const dir of leftovers.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * The peer tool's own executable, not a version-manager shim in front of it (a pyenv shim is a shell script
 * that costs about 50 ms per call): `pyenv which` names the real one. undefined when the tool is missing.
 */
export function peerBinary(name: string): string | undefined {
  const run = (cmd: string, args: string[]): string | undefined => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() || undefined : undefined;
  };
  const found = run('which', [name]);
  if (!found) return undefined;
  if (/[\\/]shims[\\/]/.test(found)) return run('pyenv', ['which', name]) ?? found;
  return found;
}

/**
 * The aws CLIs' config for the peers, as they run against S3: unsigned payloads (https), and no
 * flexible-checksum trailers (botocore >= 1.36 sends CRC32 trailers in aws-chunked bodies, which moto 5.2
 * stores with their framing; off, the CLI also skips that CRC32 work, which only favours it).
 */
export const AWS_CLI_CONFIG =
  '[default]\nregion = us-east-1\nrequest_checksum_calculation = when_required\n' +
  'response_checksum_validation = when_required\ns3 =\n  payload_signing_enabled = false\n';
