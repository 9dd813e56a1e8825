import type { Logger } from '../../core/ports';

/** CLI logger: everything to stderr, so stdout carries only the result (and stays valid JSON with --json). */
export class ConsoleLogger implements Logger {
  private readonly secrets: string[] = [];
  constructor(
    private readonly write: (line: string) => void = (l) => process.stderr.write(l + '\n'),
    private readonly verbose = false,
  ) {}

  private redact(message: string): string {
    let out = message;
    for (const s of this.secrets) out = out.split(s).join('***');
    return out;
  }
  info(message: string): void {
    this.write(this.redact(message));
  }
  warn(message: string): void {
    this.write(this.redact(`warning: ${message}`));
  }
  error(message: string): void {
    this.write(this.redact(`error: ${message}`));
  }
  debug(message: string): void {
    if (this.verbose) this.write(this.redact(`debug: ${message}`));
  }
  mask(secret: string): void {
    if (secret.length > 0) this.secrets.push(secret);
  }
  async group<T>(title: string, fn: () => Promise<T>): Promise<T> {
    this.info(`== ${title}`);
    return fn();
  }
}

/** State for CLI runs: kept in memory; the process's own finally/signal handlers do the cleanup. */
export class MemoryState {
  private readonly values = new Map<string, string>();
  save(name: string, value: string): void {
    this.values.set(name, value);
  }
  get(name: string): string {
    return this.values.get(name) ?? '';
  }
}
