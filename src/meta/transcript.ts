import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** The README's own quick-start command, whose output the README shows (examples/local-pipeline.sh). */
export const MAIN_JOB_SCRIPT = 'examples/local-pipeline.sh';

/** The 7-hex commit of every `<version>-<sha7>` folder name in the text. */
function commitPrefixes(text: string): string[] {
  return [...new Set([...text.matchAll(/\b\d+\.\d+\.\d+-([0-9a-f]{7})\b/g)].map((m) => m[1]))];
}

/**
 * What changes from run to run, replaced by placeholders of the same width (tables stay aligned): the
 * temporary folder, the commits of the throwaway repository, instance ids, dates, times, rates and ETAs.
 * Sizes, progress percentages and every other word are kept, so a changed message changes the transcript.
 */
export function normalizeTranscript(raw: string): string {
  let text = raw.replace(/\r\n/g, '\n');
  text = text.replace(
    /(?:\/[^\s/'"]+)*\/model-pipeline-demo\.[A-Za-z0-9]+/g,
    '/tmp/model-pipeline-demo.XXXXXX',
  );
  for (const sha7 of commitPrefixes(text))
    text = text.replace(new RegExp(`\\b${sha7}[0-9a-f]*\\b`, 'g'), 'xxxxxxx');
  text = text.replace(/\blocal-[0-9a-f]{12}\b/g, 'local-xxxxxxxxxxxx');
  text = text.replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\b/g, 'YYYY-MM-DDTHH:MM:SSZ');
  text = text.replace(/\b\d+(?:\.\d+)? (?:B|KiB|MiB|GiB|TiB)\/s\b/g, 'N MiB/s');
  text = text.replace(/\bETA (?:\d+s|\d+m\d\ds|\d+h\d\dm|\?)/g, 'ETA Ns');
  text = text.replace(/ in (?:\d+ ms|\d+s|\d+m\d\ds|\d+h\d\dm)\b/g, ' in N s');
  // the manifest's size moves with its timestamps and durations
  text = text.replace(/\b\d+\.\d KiB\b/g, 'N.N KiB');
  return text.replace(/[ \t]+$/gm, '').trimEnd() + '\n';
}

/** Variables a CI runner or the caller's shell sets that would change what the commands print. */
function cleanEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || /^(GITHUB_|MODEL_PIPELINE_|CIRCLE|CI$|INPUT_|RUNNER_|AWS_|PIPELINE_CLI$)/.test(k))
      continue;
    out[k] = v;
  }
  return { ...out, USER: 'demo', LC_ALL: 'C', NO_COLOR: '1' };
}

/**
 * Runs the main job as the README says (`bash examples/local-pipeline.sh`, which runs the bundled CLI in
 * dist/), stdout and stderr in the order they were written, as a CI log shows them (not a terminal: the
 * progress lines are the log's, a line every 10 s or 10 %).
 */
export function runMainJob(root: string, cli?: string): string {
  const r = spawnSync('bash', ['-c', `bash ${MAIN_JOB_SCRIPT} 2>&1`], {
    cwd: root,
    env: { ...cleanEnv(process.env), ...(cli ? { PIPELINE_CLI: cli } : {}) },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0)
    throw new Error(`${MAIN_JOB_SCRIPT} failed (exit ${r.status}): ${r.stdout}${r.stderr}`.slice(0, 4000));
  return r.stdout;
}

/** The README section: the command, then its normalized output. */
export function transcriptSection(output: string): string {
  return ['```console', `$ bash ${MAIN_JOB_SCRIPT}`, normalizeTranscript(output).trimEnd(), '```'].join('\n');
}

/** `cli`: the bundled CLI's entry (default: the clone's dist/cli/index.js, as the README runs it). */
export function mainJobTranscript(root: string, cli?: string): string {
  return transcriptSection(runMainJob(path.resolve(root), cli));
}

/**
 * For `npm run gen`: bundles src/ as scripts/bundle.mjs does, into a temp folder, and runs the demo with
 * that CLI, so the transcript matches src/ even where the committed dist/ is older (it is rebuilt once per
 * release of the branches); the e2e test checks it against dist/.
 */
export function freshBundleTranscript(root: string): string {
  const out = mkdtempSync(path.join(tmpdir(), 'mp-transcript-'));
  try {
    const dist = path.join(out, 'dist');
    const b = spawnSync(process.execPath, ['scripts/bundle.mjs'], {
      cwd: root,
      env: { ...process.env, BUNDLE_OUT: dist },
      encoding: 'utf8',
    });
    if (b.status !== 0) throw new Error(`bundling for the transcript failed: ${b.stderr}`);
    return mainJobTranscript(root, path.join(dist, 'cli', 'index.js'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
