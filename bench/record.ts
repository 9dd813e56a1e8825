import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const RESULTS_HEADER = `# Benchmarks (issue 7)

Measured by \`npm run bench\` (bench/run.ts) against a private moto_server on 127.0.0.1. Each section is one
run: the machine, then min / median / max over the runs, then the ratios against the targets. Only a full
run on a quiet machine is a measurement; SMOKE sections use tiny sizes and only show that the suite works.

Run: \`npm run bench\` (full: 1 GiB and 4 GiB uploads, 100k objects; tens of minutes, mostly writing the
rotation bucket), \`npm run bench -- --only upload --tune\`, \`npm run bench:smoke\` (CI; records nothing
unless \`--record\`). \`npm run bench -- --help\` lists the options.

- cold-start: \`node dist/cli/index.js needs-model --json\` (fresh process, model already built) vs
  \`aws s3api head-object\`; target ratio < 1.
- upload: \`S3ObjectStore.uploadFile\` of 1 GiB and 4 GiB in a child process vs \`aws s3 cp\`, each to moto
  and to a checking S3 sink that keeps no bytes (bench/s3-sink.ts: the clients' own speed); targets
  throughput ratio >= 1, peak RSS < 300 MB.
- rotate: the rotate command (dry-run false) over 100k objects in 1k model folders; S3 requests counted by a
  client middleware vs the lower bound ceil(N/1000) list + ceil(deleted/1000) delete calls.
- train: orchestration overhead with an instant training command (local backend; and SSH to 127.0.0.1 with
  a fake Compute and S3 on moto); target < 2 s.
- poll-delay: how long after an instance is running (EC2 DescribeInstances poll on moto) and after sshd
  listens (SSH readiness probe) the waits return.

<!-- runs: newest first -->
`;

/** RESULTS.md with the section of run `id` replaced in place, or added as the newest. */
export function withRunSection(current: string | undefined, id: string, section: string): string {
  let text = current ?? RESULTS_HEADER;
  if (!text.includes('<!-- runs: newest first -->'))
    text = text.trimEnd() + '\n\n<!-- runs: newest first -->\n';
  const start = `<!-- run:${id} -->`;
  const end = `<!-- /run:${id} -->`;
  const block = `${start}\n${section.trim()}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) text = text.slice(0, i) + block + text.slice(j + end.length);
  else
    text = text.replace('<!-- runs: newest first -->\n', () => `<!-- runs: newest first -->\n\n${block}\n`);
  return text;
}

export function recordMarkdown(file: string, id: string, section: string): void {
  writeFileSync(file, withRunSection(existsSync(file) ? readFileSync(file, 'utf8') : undefined, id, section));
}

const KEY_START = '<!-- key-rows: written by npm run bench:key -->';
const KEY_END = '<!-- /key-rows -->';

/** RESULTS.md with the key-rows block (the latest `npm run bench:key` verdicts) replaced, or put first. */
export function withKeyRows(current: string | undefined, block: string): string {
  const text = current ?? RESULTS_HEADER;
  const whole = `${KEY_START}\n${block.trim()}\n${KEY_END}`;
  const i = text.indexOf(KEY_START);
  const j = text.indexOf(KEY_END);
  if (i >= 0 && j > i) return text.slice(0, i) + whole + text.slice(j + KEY_END.length);
  // after the title line
  const nl = text.indexOf('\n');
  return `${text.slice(0, nl + 1)}\n${whole}\n${text.slice(nl + 1)}`;
}

export function recordKeyRows(file: string, block: string): void {
  writeFileSync(file, withKeyRows(existsSync(file) ? readFileSync(file, 'utf8') : undefined, block));
}
