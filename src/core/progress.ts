import { formatBytes } from './status';

export { formatBytes };

/** `12.5 MiB/s`; `-` before anything moved. */
export function formatRate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) return '-';
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** `45s`, `3m05s`, `2h01m`; `?` when unknown. */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export interface ProgressState {
  label: string;
  done: number;
  /** Bytes in all; undefined when the size is not known up front. */
  total?: number;
  elapsedMs: number;
}

/** One human line: `upload model.zip: 750.0 MiB / 1.5 GiB (50%), 120.0 MiB/s, ETA 6s`. */
export function progressLine(p: ProgressState): string {
  const rate = p.elapsedMs > 0 ? (p.done * 1000) / p.elapsedMs : 0;
  if (p.total === undefined) return `${p.label}: ${formatBytes(p.done)}, ${formatRate(rate)}`;
  const pct = p.total > 0 ? Math.floor((p.done / p.total) * 100) : 100;
  const eta = rate > 0 ? (p.total - p.done) / rate : undefined;
  return `${p.label}: ${formatBytes(p.done)} / ${formatBytes(p.total)} (${pct}%), ${formatRate(rate)}, ETA ${formatEta(eta)}`;
}

/** The closing line of a transfer: size, time and mean rate. */
export function doneLine(p: ProgressState): string {
  const ms = Math.max(1, p.elapsedMs);
  const took = ms < 1000 ? `${Math.round(ms)} ms` : formatEta(ms / 1000);
  return `${p.label}: ${formatBytes(p.done)} in ${took} (${formatRate((p.done * 1000) / ms)})`;
}

/**
 * When a log (CI, not a terminal) gets a progress line: every `everyMs` (10 s) or every `everyPercent`
 * (10 %) step, whichever comes first, and never more often than that: a 1.5 GB upload writes about ten
 * lines, not thousands.
 */
export class LogThrottle {
  private lastAt = 0;
  private lastStep = 0;
  constructor(
    private readonly everyMs = 10_000,
    private readonly everyPercent = 10,
  ) {}

  /** Whether a line is due now, for `done` of `total` at `elapsedMs` since the start. */
  due(done: number, total: number | undefined, elapsedMs: number): boolean {
    const step =
      total !== undefined && total > 0
        ? Math.floor((done / total) * (100 / this.everyPercent))
        : this.lastStep;
    const complete = total !== undefined && done >= total;
    if (complete) return false; // the closing line says it
    if (step > this.lastStep || elapsedMs - this.lastAt >= this.everyMs) {
      this.lastStep = Math.max(step, this.lastStep);
      this.lastAt = elapsedMs;
      return true;
    }
    return false;
  }
}

/** A transfer in progress: `advance` by the bytes just moved, `done` once at the end. */
export interface ProgressTask {
  advance(bytes: number): void;
  done(): void;
}

/** Starts progress reports; the CLI draws a bar in a terminal, CI logs get throttled lines. */
export interface Progress {
  start(label: string, total?: number): ProgressTask;
}

/** For tests and callers that want none. */
export const noProgress: Progress = {
  start: () => ({ advance: () => undefined, done: () => undefined }),
};
