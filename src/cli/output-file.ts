import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../core/errors';

/** `needs-model` -> `MP_NEEDS_MODEL`: names a shell can export and CircleCI's BASH_ENV can source. */
export function outputEnvName(name: string): string {
  return 'MP_' + name.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase();
}

/** Single-quoted for POSIX shells, so JSON, spaces and `$` survive being sourced unchanged. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** One `MP_NAME='value'` line per output, in the order the command returned them. */
export function formatOutputLines(outputs: Record<string, string>): string {
  return Object.entries(outputs)
    .map(([name, value]) => `${outputEnvName(name)}=${shellQuote(value)}\n`)
    .join('');
}

/**
 * Appends rather than overwrites: several commands of one CI job share one file (CircleCI's BASH_ENV is
 * the usual target), and a later line wins when the file is sourced.
 */
export async function appendOutputFile(
  file: string,
  cwd: string,
  outputs: Record<string, string>,
): Promise<void> {
  const full = path.resolve(cwd, file);
  try {
    await fs.mkdir(path.dirname(full), { recursive: true });
    await fs.appendFile(full, formatOutputLines(outputs));
  } catch (err) {
    throw new UserError(
      `cannot write --output-file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): choose a writable path`,
    );
  }
}

/** --summary-file: the Markdown summary GitHub shows as the step summary, for CI without one (CircleCI). */
export async function appendSummaryFile(file: string, cwd: string, summary: string): Promise<void> {
  const full = path.resolve(cwd, file);
  try {
    await fs.mkdir(path.dirname(full), { recursive: true });
    await fs.appendFile(full, summary.endsWith('\n') ? summary : summary + '\n');
  } catch (err) {
    throw new UserError(
      `cannot write --summary-file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): choose a writable path`,
    );
  }
}
