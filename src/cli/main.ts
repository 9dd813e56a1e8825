import { exitCodeOf, messageOf, UserError } from '../core/errors';
import type { Dialect } from '../core/options';
import { allOptions, COMMANDS, optionsOf } from '../commands';
import { typedOutputs } from '../commands/output-specs';
import type { CommandDef } from '../commands/types';
import { ConsoleLogger, MemoryState } from '../adapters/system/console-logger';
import { findCommand, runCommand } from '../runner';
import { parseCliArgs } from './args';
import { annotation, writeGithubFiles } from './github';
import { writeCircleciFiles } from './circleci';
import { createProgress } from '../adapters/system/progress';
import { appendOutputFile, appendSummaryFile } from './output-file';
import { commandHelp, generalHelp } from './help';
import { VERSION } from '../version';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  cwd: string;
  /** stderr when it is a terminal: long transfers then draw a live bar instead of log lines. */
  tty?: NodeJS.WriteStream;
}

const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t.endsWith('\n') ? t : t + '\n'),
  stderr: (t) => process.stderr.write(t.endsWith('\n') ? t : t + '\n'),
  env: process.env,
  cwd: process.cwd(),
  tty: process.stderr.isTTY ? process.stderr : undefined,
};

/** What needs AWS and has no local mode: `--local` there is a clear error, not a credentials failure. */
const NO_LOCAL_MODE: Readonly<Record<string, string>> = {
  'build-ami': 'it builds the training AMI with Packer on EC2',
  'prune-amis': 'it deregisters AMIs and deletes their snapshots in EC2',
};

function checkLocal(cmd: CommandDef, local: boolean): void {
  const why = NO_LOCAL_MODE[cmd.name];
  if (local && why)
    throw new UserError(
      `${cmd.name} has no local mode: ${why}, so it needs AWS credentials and a region (--region or AWS_REGION); run it without --local`,
    );
}

/** A flag some other command reads: say which, rather than "unknown option" or a silent ignore. */
function notRead(cmd: CommandDef, flag: string): string | undefined {
  const readers = Object.values(COMMANDS)
    .filter((c) => optionsOf(c).some((o) => o.name === flag || o.cliAliases?.includes(flag)))
    .map((c) => c.name);
  if (readers.length === 0) return undefined;
  const shown = readers.length > 4 ? `${readers.slice(0, 4).join(', ')}, ...` : readers.join(', ');
  return `${cmd.name} does not read --${flag} (${shown} do); remove it`;
}

/** The orb's run.sh sets MODEL_PIPELINE_DIALECT=orb, so messages name its parameters (dry_run). */
function dialectOf(env: Record<string, string | undefined>): Dialect {
  return env.MODEL_PIPELINE_DIALECT === 'orb' ? 'orb' : 'cli';
}

/** Returns the exit code: 0 done, 1 failed, 2 bad input. */
export async function cli(argv: string[], io: CliIo = defaultIo, signal?: AbortSignal): Promise<number> {
  const json = argv.includes('--json');
  const inGithub = io.env.GITHUB_ACTIONS === 'true';
  try {
    // parsed with every command's flags, so a flag's value before the command is not taken for it
    const first = parseCliArgs(argv, allOptions());
    const commandName = first.command ?? first.helpFor;
    const cmd = commandName ? findCommand(commandName) : undefined;
    const args = parseCliArgs(argv, cmd ? optionsOf(cmd) : [], cmd && ((flag) => notRead(cmd, flag)));
    if (args.version) {
      io.stdout(VERSION);
      return 0;
    }
    if (!cmd) {
      if (!args.help) findCommand(''); // throws: no command given, and the list of commands
      io.stdout(generalHelp(Object.values(COMMANDS), VERSION));
      return 0;
    }
    if (args.help) {
      io.stdout(commandHelp(cmd, optionsOf(cmd)));
      return 0;
    }
    checkLocal(cmd, args.local);
    const logger = new ConsoleLogger(
      inGithub
        ? (line) => io.stderr(line.startsWith('warning: ') ? annotation('warning', line.slice(9)) : line)
        : io.stderr,
      io.env.MODEL_PIPELINE_DEBUG === '1',
    );
    const result = await runCommand({
      command: cmd.name,
      inputs: args.inputs,
      env: io.env,
      cwd: io.cwd,
      logger,
      state: new MemoryState(),
      signal: signal ?? new AbortController().signal,
      dialect: dialectOf(io.env),
      progress: createProgress({ line: (t) => logger.info(t), tty: io.tty }),
    });
    if (args.outputFile) await appendOutputFile(args.outputFile, io.cwd, result.outputs);
    if (args.summaryFile && result.summary) await appendSummaryFile(args.summaryFile, io.cwd, result.summary);
    if (inGithub) await writeGithubFiles(io.env, result);
    if (io.env.CIRCLECI === 'true') await writeCircleciFiles(io.env, result);
    if (args.json)
      io.stdout(
        JSON.stringify({ command: cmd.name, outputs: typedOutputs(cmd.outputs, result.outputs) }, null, 2),
      );
    else io.stdout(result.text ?? result.summary ?? '');
    return 0;
  } catch (err) {
    const code = exitCodeOf(err);
    const message = messageOf(err);
    if (json) io.stdout(JSON.stringify({ error: message, exitCode: code }, null, 2));
    io.stderr(inGithub ? annotation('error', message) : `error: ${message}`);
    if (
      !(err instanceof UserError) &&
      code !== 2 &&
      io.env.MODEL_PIPELINE_DEBUG === '1' &&
      err instanceof Error
    ) {
      io.stderr(err.stack ?? '');
    }
    return code;
  }
}
