import { promises as fs } from 'node:fs';

/** `%`, CR and LF escaped as workflow commands need them. */
export function escapeCommandData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** An `::error::` / `::warning::` line: GitHub shows it as an annotation on the run. */
export function annotation(kind: 'error' | 'warning' | 'notice', message: string): string {
  return `::${kind}::${escapeCommandData(message)}`;
}

/** `name<<delimiter` blocks, so values with newlines survive; the delimiter never occurs in a value. */
export function formatGithubOutputs(outputs: Record<string, string>, delimiter: string): string {
  return Object.entries(outputs)
    .map(([name, value]) => {
      let d = delimiter;
      while (value.includes(d)) d += '_';
      return `${name}<<${d}\n${value}\n${d}\n`;
    })
    .join('');
}

/**
 * The CLI inside a GitHub Actions step does what the action does: the outputs go to $GITHUB_OUTPUT (so
 * `steps.<id>.outputs.<name>` works) and the summary to $GITHUB_STEP_SUMMARY.
 */
export async function writeGithubFiles(
  env: Record<string, string | undefined>,
  result: { outputs: Record<string, string>; summary?: string },
): Promise<void> {
  if (env.GITHUB_OUTPUT) {
    const delimiter = `mp_${Date.now().toString(36)}_${Math.random().toString(36).slice(2)}`;
    await fs.appendFile(env.GITHUB_OUTPUT, formatGithubOutputs(result.outputs, delimiter));
  }
  if (env.GITHUB_STEP_SUMMARY && result.summary) {
    await fs.appendFile(
      env.GITHUB_STEP_SUMMARY,
      result.summary.endsWith('\n') ? result.summary : result.summary + '\n',
    );
  }
}
