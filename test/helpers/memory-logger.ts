import type { Logger } from '../../src/core/ports';

/**
 * Collects log lines; `onLine` lets a test react to output (e.g. abort when training has started).
 * `group` adds no line of its own, so `lines` holds exactly what the command logged.
 */
export class MemoryLogger implements Logger {
  readonly lines: string[] = [];
  readonly masked: string[] = [];
  onLine?: (line: string) => void;
  private add(line: string): void {
    this.lines.push(line);
    this.onLine?.(line);
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
  mask(s: string): void {
    this.masked.push(s);
  }
  async group<T>(_title: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }
  text(): string {
    return this.lines.join('\n');
  }
}

/** A logger that drops everything, for tests that only look at outputs and stores. */
export const quietLogger: Logger = {
  info: () => {},
  warn: () => {},
  error: () => {},
  debug: () => {},
  mask: () => {},
  group: (_t, fn) => fn(),
};
