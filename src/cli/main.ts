import { exitCodeOf, messageOf, UserError } from '../core/errors';
import { allOptions, COMMANDS, optionsOf } from '../commands';
import { ConsoleLogger, MemoryState } from '../adapters/system/console-logger';
import { findCommand, runCommand } from '../runner';
import { parseCliArgs } from './args';
import { appendOutputFile } from './output-file';
import { commandHelp, generalHelp } from './help';
import { VERSION } from '../version';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  cwd: string;
}

const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t.endsWith('\n') ? t : t + '\n'),
  stderr: (t) => process.stderr.write(t.endsWith('\n') ? t : t + '\n'),
  env: process.env,
  cwd: process.cwd(),
};

/** Returns the exit code: 0 done, 1 failed, 2 bad input. */
export async function cli(argv: string[], io: CliIo = defaultIo, signal?: AbortSignal): Promise<number> {
  const json = argv.includes('--json');
  try {
    // parsed with every command's flags, so a flag's value before the command is not taken for it
    const commandName = parseCliArgs(argv, allOptions()).command;
    const cmd = commandName ? findCommand(commandName) : undefined;
    const args = parseCliArgs(argv, cmd ? optionsOf(cmd) : []);
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
    const logger = new ConsoleLogger(io.stderr, io.env.MODEL_PIPELINE_DEBUG === '1');
    const result = await runCommand({
      command: cmd.name,
      inputs: args.inputs,
      env: io.env,
      cwd: io.cwd,
      logger,
      state: new MemoryState(),
      signal: signal ?? new AbortController().signal,
    });
    if (args.outputFile) await appendOutputFile(args.outputFile, io.cwd, result.outputs);
    if (args.json) io.stdout(JSON.stringify({ command: cmd.name, outputs: result.outputs }, null, 2));
    else io.stdout(result.text ?? result.summary ?? '');
    return 0;
  } catch (err) {
    const code = exitCodeOf(err);
    const message = messageOf(err);
    if (json) io.stdout(JSON.stringify({ error: message, exitCode: code }, null, 2));
    io.stderr(`error: ${message}`);
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
