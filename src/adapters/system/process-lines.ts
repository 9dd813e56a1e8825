import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PipelineError } from '../../core/errors';
import { formatDuration } from '../../core/duration';

/** A child process stopped by us: on its timeout or because the run was aborted (SIGINT/SIGTERM). */
export class ProcessStoppedError extends PipelineError {
  constructor(
    message: string,
    readonly reason: 'timeout' | 'abort',
  ) {
    super(message);
    this.name = 'ProcessStoppedError';
  }
}

export interface RunLinesOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutSeconds?: number;
  signal?: AbortSignal;
  /** Each line of stdout and stderr, as it arrives. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Own process group, so a stop kills everything the command started. */
  detached?: boolean;
  /**
   * `pipe` keeps stdin open and unwritten for the life of the child: a remote command watching its stdin
   * learns that the connection is gone when we kill ssh.
   */
  stdin?: 'ignore' | 'pipe';
  /** What runs, for messages ("ssh to 10.0.0.1", "training command"). */
  what: string;
  onSpawn?: (pid: number) => void;
  killGraceMs?: number;
}

export interface RunLinesResult {
  exitCode: number;
  /** The last lines of output (for error messages). */
  tail: string[];
}

const TAIL_LINES = 20;

/** Runs a program (no shell), streaming its lines; resolves with the exit code, rejects when we stop it. */
export function runLines(file: string, args: readonly string[], o: RunLinesOptions): Promise<RunLinesResult> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(new ProcessStoppedError(`${o.what} not started: ${reasonOf(o.signal)}`, 'abort'));
      return;
    }
    const child = spawn(file, args, {
      cwd: o.cwd,
      env: o.env ?? process.env,
      stdio: [o.stdin ?? 'ignore', 'pipe', 'pipe'],
      detached: o.detached ?? false,
    });
    const tail: string[] = [];
    let stopped: ProcessStoppedError | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;

    const kill = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        if (o.detached) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // already gone
      }
    };
    const stop = (err: ProcessStoppedError): void => {
      if (stopped) return;
      stopped = err;
      kill('SIGTERM');
      killTimer = setTimeout(() => kill('SIGKILL'), o.killGraceMs ?? 5000);
      killTimer.unref();
    };

    const timer =
      o.timeoutSeconds !== undefined && o.timeoutSeconds > 0
        ? setTimeout(
            () =>
              stop(
                new ProcessStoppedError(
                  `${o.what} timed out after ${formatDuration(o.timeoutSeconds!)} and was stopped`,
                  'timeout',
                ),
              ),
            o.timeoutSeconds * 1000,
          )
        : undefined;
    const onAbort = (): void =>
      stop(new ProcessStoppedError(`${o.what} stopped: ${reasonOf(o.signal!)}`, 'abort'));
    o.signal?.addEventListener('abort', onAbort, { once: true });

    const pending: Promise<void>[] = [];
    for (const [stream, name] of [
      [child.stdout, 'stdout'],
      [child.stderr, 'stderr'],
    ] as const) {
      const rl = createInterface({ input: stream!, crlfDelay: Infinity });
      rl.on('line', (line) => {
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        o.onLine?.(line, name);
      });
      pending.push(new Promise((r) => rl.once('close', () => r())));
    }

    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      fn();
    };

    child.once('spawn', () => {
      if (child.pid !== undefined) o.onSpawn?.(child.pid);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'ENOENT' ? `: ${file} is not installed or not on PATH` : `: ${err.message}`;
      finish(() => reject(new PipelineError(`cannot run ${o.what}${hint}`)));
    });
    child.once('close', (code, signal) => {
      void Promise.all(pending).then(() =>
        finish(() => {
          if (killTimer) clearTimeout(killTimer);
          if (stopped) {
            // a stopped group may leave grandchildren that ignored SIGTERM
            if (o.detached && child.pid !== undefined) {
              try {
                process.kill(-child.pid, 'SIGKILL');
              } catch {
                // the whole group is gone
              }
            }
            reject(stopped);
          } else resolve({ exitCode: code ?? (signal ? 128 + signalNumber(signal) : 1), tail });
        }),
      );
    });
  });
}

function reasonOf(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r.message;
  return r === undefined ? 'aborted' : String(r);
}

function signalNumber(sig: NodeJS.Signals): number {
  const map: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return map[sig] ?? 0;
}
