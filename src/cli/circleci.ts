import { promises as fs } from 'node:fs';
import { outputEnvName, shellQuote } from './output-file';

/** `export MP_NAME='value'` per output: CircleCI sources $BASH_ENV at the start of every later step. */
export function formatExportLines(outputs: Record<string, string>): string {
  return Object.entries(outputs)
    .map(([name, value]) => `export ${outputEnvName(name)}=${shellQuote(value)}\n`)
    .join('');
}

/**
 * The CLI inside a CircleCI step does what CircleCI offers for outputs: `export MP_NAME='value'` lines on
 * $BASH_ENV, so later steps of the job read `$MP_NEEDS_MODEL` (the orb's run.sh writes them itself, with
 * the workspace copy, and runs the CLI with MODEL_PIPELINE_DIALECT=orb). A missing BASH_ENV is no error.
 */
export async function writeCircleciFiles(
  env: Record<string, string | undefined>,
  result: { outputs: Record<string, string> },
): Promise<void> {
  if (!env.BASH_ENV || env.MODEL_PIPELINE_DIALECT === 'orb') return;
  await fs.appendFile(env.BASH_ENV, formatExportLines(result.outputs));
}
