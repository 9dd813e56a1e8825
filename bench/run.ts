/**
 * npm run bench: the speed of model-pipeline against what users would run instead (issue 7), on a private
 * moto_server. Prints min/median/max over several runs and the ratios against the targets; a full run
 * records bench/results/<date>.json and a section of bench/RESULTS.md.
 *
 *   npm run bench                       full sizes (minutes; run it on a quiet machine)
 *   npm run bench:smoke                 tiny sizes, 2 runs, records nothing (CI)
 *   npm run bench -- --only upload      one benchmark (cold-start, upload, rotate, train, poll-delay)
 *
 * Exits non-zero only when a benchmark could not run, never because a target was missed.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startMoto, type MotoServer } from '../test/helpers/moto';
import { coldStart } from './cold-start';
import { fetchModel } from './fetch';
import {
  FAKE_AWS_ENV,
  fmt,
  log,
  removeLeftovers,
  stats,
  type BenchContext,
  type BenchOutput,
  type Series,
  type Verdict,
} from './lib';
import { pollDelay } from './poll-delay';
import { promote } from './promote';
import { recordKeyRows, recordMarkdown } from './record';
import { rotate } from './rotate';
import { train } from './train';
import { upload } from './upload';

const BENCHES: Record<string, (ctx: BenchContext) => Promise<BenchOutput>> = {
  'cold-start': coldStart,
  upload,
  rotate,
  train,
  'poll-delay': pollDelay,
  promote,
  'fetch-model': fetchModel,
};

/**
 * The rows issue 19 judges, in one command that takes about 35 minutes on a quiet 2-core machine:
 * npm run bench:key (= npm run bench -- --key). Each flag can still be overridden after it.
 */
const KEY_PRESET: [string, string][] = [
  ['only', 'cold-start,promote,fetch-model,upload'],
  ['runs', '5'],
  ['upload-sizes', '1024'],
  ['promote-sizes', '1024'],
  ['fetch-size', '1024'],
  ['no-separate', 'true'],
];

const USAGE = `usage: npm run bench -- [options]
  --key                   the rows issue 19 judges, 5 paired runs each, 1 GiB (npm run bench:key):
                          ${KEY_PRESET.map(([k, v]) => (v === 'true' ? `--${k}` : `--${k} ${v}`)).join(' ')}
  --smoke                 tiny sizes, 2 runs; records nothing unless --record
  --only a,b              run only these: ${Object.keys(BENCHES).join(', ')}
  --runs N                runs per benchmark (default: 15 cold-start, 3 upload, 3 rotate, 7 train, 8 poll-delay, 3 promote)
  --record / --no-record  write bench/results/*.json and bench/RESULTS.md (default: on, off with --smoke)
  --cli PATH              CLI entry for cold-start (default dist/cli/index.js)
  --upload-sizes MiB,...  upload sizes (default 1024,4096; smoke 20)
  --upload-peers a,b      stores to upload to: moto, sink (a checking S3 sink that keeps no bytes), paced (the
                          sink behind a link of --upload-pace MiB/s, default 200: train's path vs uploadFile
                          alone where the store does not share this machine's CPU); default all three
  --upload-pace MiB/s     the paced store's link
  --part-size MiB --concurrency N  S3ObjectStore multipart settings for the upload comparison
  --no-separate           upload: skip the "train's path before" variant (a second sha256 read; report only)
  --upload-http           upload over plain http (default https, as to S3: unsigned payloads for every client)
  --tune                  also try a grid of part sizes x parts in flight on the first size and store
  --rotate-objects N --rotate-prefixes N   (default 100000 / 1000; smoke 2000 / 20)
  --promote-sizes MiB,...  model.zip sizes for promote (default 1024; smoke 20)
  --fetch-size MiB        model.zip size for fetch-model (default 1024; smoke 24)
  --fetch-peers a,b       servers for fetch-model: files (plain file server), moto (default both)
  --aws-v2 PATH           aws-cli v2 binary for the peers (default /usr/bin/aws, Debian's awscli)
  --no-ssh                skip the SSH variant of train`;

function parseArgs(argv: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  const valued = new Set([
    'only',
    'runs',
    'cli',
    'upload-sizes',
    'upload-peers',
    'upload-pace',
    'part-size',
    'concurrency',
    'rotate-objects',
    'rotate-prefixes',
    'promote-sizes',
    'fetch-size',
    'fetch-peers',
    'aws-v2',
  ]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"\n${USAGE}`);
    const [name, inline] = a.slice(2).split('=', 2);
    if (valued.has(name)) {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`--${name} needs a value\n${USAGE}`);
      flags.set(name, v);
    } else flags.set(name, 'true');
  }
  return flags;
}

function sh(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return '?';
  }
}

interface Machine {
  date: string;
  nproc: string;
  cpu: string;
  memoryGiB: string;
  loadAverage: string;
  node: string;
  aws: string;
  rclone: string;
  moto: string;
  commit: string;
}

function machine(root: string): Machine {
  const dirty = sh('git', ['status', '--porcelain'], root) !== '' ? ' (uncommitted changes)' : '';
  return {
    date: new Date().toISOString(),
    nproc: sh('nproc', []),
    cpu: os.cpus()[0]?.model ?? '?',
    memoryGiB: (os.totalmem() / 1024 ** 3).toFixed(1),
    loadAverage: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    node: process.version,
    // the CLIs the peers run, by their own binaries (v1 from the PATH, v2 from Debian's awscli), and rclone
    aws: [sh('aws', ['--version']).split(' ')[0], sh('/usr/bin/aws', ['--version']).split(' ')[0]]
      .filter((v) => v !== '?')
      .join(', '),
    rclone: sh('rclone', ['version']).split('\n')[0],
    moto: sh(process.env.MOTO_PYTHON ?? 'python3', ['-c', 'import moto; print(moto.__version__)']),
    commit: sh('git', ['rev-parse', '--short', 'HEAD'], root) + dirty,
  };
}

function pad(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ')).join('\n');
}

function seriesRows(series: Series[]): string[][] {
  return series.map((s) => {
    const st = stats(s.samples);
    return [s.bench, s.name, s.unit, String(st.n), fmt(st.min), fmt(st.median), fmt(st.max)];
  });
}

function verdictRows(verdicts: Verdict[]): string[][] {
  return verdicts.map((v) => {
    const st = stats(v.samples);
    const met = v.met === undefined ? '-' : v.met ? 'yes' : 'NO';
    return [
      v.bench,
      v.name,
      v.unit,
      fmt(st.min),
      fmt(st.median),
      fmt(st.max),
      v.target,
      met,
      v.load ?? '',
      v.note ?? '',
    ];
  });
}

const SERIES_HEAD = ['bench', 'measure', 'unit', 'n', 'min', 'median', 'max'];
const VERDICT_HEAD = [
  'bench',
  'what',
  'unit',
  'min',
  'median',
  'max',
  'target',
  'met',
  'load (1 min) start → end',
  'note',
];

function markdownTable(head: string[], rows: string[][]): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|');
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

/**
 * Waits (at most 2 minutes) for the 1-minute load to fall under half the cores: the previous benchmark's
 * client and server weigh on that average for a minute or two after they stop.
 */
async function settle(cores: number): Promise<void> {
  for (const end = Date.now() + 120_000; os.loadavg()[0] >= cores / 2 && Date.now() < end;)
    await new Promise((r) => setTimeout(r, 5000));
}

async function main(): Promise<number> {
  const flags = parseArgs(process.argv.slice(2));
  if (flags.has('key')) for (const [k, v] of KEY_PRESET) if (!flags.has(k)) flags.set(k, v);
  if (flags.has('help')) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const root = path.resolve(__dirname, '../..');
  const smoke = flags.has('smoke');
  const only =
    flags
      .get('only')
      ?.split(',')
      .map((s) => s.trim()) ?? Object.keys(BENCHES);
  for (const name of only) if (!BENCHES[name]) throw new Error(`unknown benchmark "${name}"\n${USAGE}`);
  const record = flags.has('no-record') ? false : flags.has('record') || !smoke;
  const runs = flags.get('runs') ? Number(flags.get('runs')) : undefined;
  if (runs !== undefined && !(Number.isInteger(runs) && runs > 0)) throw new Error('--runs must be >= 1');

  Object.assign(process.env, FAKE_AWS_ENV);
  const m = machine(root);
  const started = Date.now();
  log(`${smoke ? 'SMOKE run' : 'full run'}: ${only.join(', ')} on ${m.nproc} cpus, load ${m.loadAverage}`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mp-bench-'));
  let moto: MotoServer | undefined;
  const stop = (): void => {
    rmSync(tmp, { recursive: true, force: true });
    removeLeftovers();
    void moto?.stop();
  };
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)
    process.once(signal, () => {
      stop();
      process.exit(code);
    });

  const series: Series[] = [];
  const verdicts: Verdict[] = [];
  const notes: string[] = [];
  const errors: string[] = [];
  try {
    moto = await startMoto();
    const ctx: BenchContext = { endpoint: moto.endpoint, smoke, runs, root, tmp, flags };
    for (const name of only) {
      const t0 = Date.now();
      log(`== ${name}`);
      if (flags.has('key') && !smoke) await settle(Number(m.nproc));
      const loadBefore = os.loadavg()[0].toFixed(1);
      try {
        const out = await BENCHES[name](ctx);
        const load = `${loadBefore} → ${os.loadavg()[0].toFixed(1)}`;
        series.push(...out.series);
        // the load counts this bench's own client and server too; at its start, only other work
        const busy =
          Number(loadBefore) > Number(m.nproc)
            ? `start load ${loadBefore} > ${m.nproc} cpus: not a measurement`
            : '';
        verdicts.push(
          ...out.verdicts.map((v) => ({
            ...v,
            load,
            note: [busy, v.note].filter(Boolean).join('; ') || undefined,
          })),
        );
        notes.push(...out.notes);
        log(`${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      } catch (err) {
        const msg = `${name} failed: ${(err as Error).stack ?? String(err)}`;
        errors.push(msg);
        log(msg);
      }
    }
  } finally {
    await moto?.stop();
    rmSync(tmp, { recursive: true, force: true });
    removeLeftovers();
  }

  const elapsed = (Date.now() - started) / 1000;
  const machineLine =
    `${m.nproc} cpus (${m.cpu}), ${m.memoryGiB} GiB, node ${m.node}, ${m.aws}, ${m.rclone}, moto ${m.moto}, ` +
    `load at start ${m.loadAverage}, at end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, commit ${m.commit}`;
  const out = [
    `model-pipeline bench: ${smoke ? 'SMOKE (tiny sizes, not a measurement)' : 'full'} run, ${m.date}`,
    machineLine,
    '',
    series.length > 0 ? pad([SERIES_HEAD, ...seriesRows(series)]) : '(no measurements)',
    '',
    verdicts.length > 0 ? pad([VERDICT_HEAD, ...verdictRows(verdicts)]) : '',
    '',
    ...notes.map((n) => `note: ${n}`),
    ...errors.map((e) => `ERROR: ${e.split('\n')[0]}`),
    `took ${elapsed.toFixed(1)} s`,
  ];
  process.stdout.write(out.join('\n') + '\n');

  if (record) {
    const day = m.date.slice(0, 10);
    const id = flags.has('key')
      ? `${day}-key`
      : `${day}${smoke ? '-smoke' : ''}${flags.has('only') ? '-' + only.join('+') : ''}`;
    const dir = path.join(root, 'bench/results');
    mkdirSync(dir, { recursive: true });
    const json = path.join(dir, `${id}.json`);
    writeFileSync(
      json,
      JSON.stringify(
        { id, smoke, machine: m, flags: Object.fromEntries(flags), series, verdicts, notes, errors },
        null,
        2,
      ) + '\n',
    );
    const title = smoke
      ? `## ${day}: SMOKE run (tiny sizes, 2 runs: shows the suite works, NOT a measurement)`
      : `## ${day}: full run${flags.has('only') ? ` (${only.join(', ')})` : ''}`;
    const section = [
      title,
      '',
      `Machine: ${machineLine}. Took ${elapsed.toFixed(0)} s. Raw samples: [results/${id}.json](results/${id}.json).`,
      '',
      markdownTable(SERIES_HEAD, seriesRows(series)),
      '',
      markdownTable(VERDICT_HEAD, verdictRows(verdicts)),
      '',
      ...notes.map((n) => `- ${n}`),
      ...errors.map((e) => `- ERROR: ${e.split('\n')[0]}`),
    ].join('\n');
    recordMarkdown(path.join(root, 'bench/RESULTS.md'), id, section);
    if (flags.has('key') && !smoke) {
      const given = [...flags]
        .filter(([k]) => k !== 'key' && !KEY_PRESET.some(([p, v]) => p === k && v === flags.get(k)))
        .map(([k, v]) => (v === 'true' ? `--${k}` : `--${k} ${v}`));
      recordKeyRows(
        path.join(root, 'bench/RESULTS.md'),
        [
          `## Key rows (issue 19): latest \`npm run bench:key${given.length ? ` -- ${given.join(' ')}` : ''}\`, ${m.date.slice(0, 16).replace('T', ' ')} UTC`,
          '',
          'Re-run: `npm run bench:key` (rebuilds dist/, then cold-start, promote, fetch-model and upload at 1 GiB, 5 ' +
            'paired runs each, after waiting up to 2 minutes for the load to settle before each; about 35 minutes on a quiet 2-core machine). It rewrites this table and adds a ' +
            `section below. Machine: ${machineLine}. Each row: its target, the median of the paired ratios, ` +
            'the 1-minute load average when its benchmark started and ended, and whether the target holds ' +
            '("-": reported, no target). The load counts the benchmark\'s own client and server (moto, the sink) ' +
            'too; a start load above the core count means other work shared the CPU, and the row says it is not a ' +
            'measurement.',
          '',
          markdownTable(VERDICT_HEAD, verdictRows(verdicts)),
          '',
          ...notes.map((n) => `- ${n}`),
          ...errors.map((e) => `- ERROR: ${e.split('\n')[0]}`),
        ].join('\n'),
      );
    }
    log(`recorded ${path.relative(root, json)} and bench/RESULTS.md`);
  }
  return errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 2;
  },
);
