import { SingleBar } from 'cli-progress';
import { doneLine, formatBytes, formatEta, formatRate, LogThrottle, progressLine } from '../../core/progress';
import type { Progress, ProgressTask } from '../../core/progress';

export interface ProgressIo {
  /** A log line (stderr on the CLI, the step log in the action). */
  line(text: string): void;
  /** Draw a live bar: only when stderr is a terminal. */
  tty?: NodeJS.WriteStream;
  now?: () => number;
}

/**
 * In a terminal a live cli-progress bar with bytes, rate and ETA; elsewhere (CI logs) a line every 10 s or
 * 10 %, then a closing line with the size, time and rate.
 */
export function createProgress(io: ProgressIo): Progress {
  const now = io.now ?? (() => Date.now());
  return {
    start(label: string, total?: number): ProgressTask {
      const started = now();
      let done = 0;
      let finished = false;
      const state = () => ({ label, done, total, elapsedMs: now() - started });
      if (io.tty && total !== undefined) {
        const bar = new SingleBar({
          stream: io.tty,
          format: `${label} [{bar}] {percentage}% {done} / {size}, {rate}, ETA {etaText}`,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
        });
        const payload = () => {
          const s = state();
          const rate = s.elapsedMs > 0 ? (done * 1000) / s.elapsedMs : 0;
          return {
            done: formatBytes(done),
            size: formatBytes(total),
            rate: formatRate(rate),
            etaText: formatEta(rate > 0 ? (total - done) / rate : undefined),
          };
        };
        bar.start(total, 0, payload());
        return {
          advance(bytes) {
            done += bytes;
            bar.update(done, payload());
          },
          done() {
            if (finished) return;
            finished = true;
            bar.stop();
            io.line(doneLine(state()));
          },
        };
      }
      const throttle = new LogThrottle();
      return {
        advance(bytes) {
          done += bytes;
          const s = state();
          if (throttle.due(done, total, s.elapsedMs)) io.line(progressLine(s));
        },
        done() {
          if (finished) return;
          finished = true;
          io.line(doneLine(state()));
        },
      };
    },
  };
}
