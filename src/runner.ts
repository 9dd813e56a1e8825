import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseDotenv } from './core/dotenv';
import { UserError } from './core/errors';
import { resolveOptions, unknownInputs, type Options } from './core/options';
import type { Logger, StateStore } from './core/ports';
import { COMMANDS, commandNames, optionsOf } from './commands';
import type { CommandContext, CommandDef, CommandResult } from './commands/types';
import { createDeps } from './wiring';

export interface RunRequest {
  command: string;
  /** Action inputs or CLI flags by option name. */
  inputs: Record<string, string | undefined>;
  env: Record<string, string | undefined>;
  cwd: string;
  logger: Logger;
  state: StateStore;
  signal: AbortSignal;
}

export function findCommand(name: string): CommandDef {
  const cmd = COMMANDS[name.trim()];
  if (!cmd) {
    const given = name.trim() === '' ? 'no command given' : `unknown command "${name}"`;
    throw new UserError(`${given}; expected one of: ${commandNames().join(', ')}`);
  }
  return cmd;
}

async function readSettingsFile(
  file: string | undefined,
  cwd: string,
): Promise<Record<string, string> | undefined> {
  if (!file) return undefined;
  const full = path.resolve(cwd, file);
  let text: string;
  try {
    text = await fs.readFile(full, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`settings file ${file} not found (in ${cwd})`);
    if (code === 'EISDIR') throw new UserError(`settings-file ${file} is a folder, not a file`);
    throw new UserError(`cannot read settings file ${file}: ${(err as Error).message}`);
  }
  return parseDotenv(text, file);
}

/** Settings are resolved once, in the order inputs > environment > settings file > defaults. */
export async function resolveFor(
  cmd: CommandDef,
  req: Pick<RunRequest, 'inputs' | 'env' | 'cwd'>,
): Promise<Options> {
  const specs = optionsOf(cmd);
  const first = resolveOptions(
    specs.filter((s) => s.name === 'settings-file' || s.name === 'working-directory'),
    { inputs: req.inputs, env: req.env },
  );
  const wd = path.resolve(req.cwd, first.string('working-directory') ?? '.');
  const settingsFile = await readSettingsFile(first.string('settings-file'), wd);
  return resolveOptions(specs, { inputs: req.inputs, env: req.env, settingsFile });
}

export async function buildContext(cmd: CommandDef, req: RunRequest): Promise<CommandContext> {
  const options = await resolveFor(cmd, req);
  for (const spec of optionsOf(cmd)) {
    const v = options.string(spec.name);
    if (spec.secret && v) req.logger.mask(v);
  }
  const deps = createDeps(options, {
    logger: req.logger,
    state: req.state,
    env: req.env,
    cwd: req.cwd,
    signal: req.signal,
  });
  return { options, deps, signal: req.signal };
}

export async function runCommand(req: RunRequest): Promise<CommandResult> {
  const cmd = findCommand(req.command);
  const ctx = await buildContext(cmd, req);
  // the action reads every command's inputs; one this command ignores is most likely a mistake
  const given = Object.keys(req.inputs).filter((k) => req.inputs[k] !== undefined && req.inputs[k] !== '');
  const unused = unknownInputs(optionsOf(cmd), given);
  if (unused.length > 0)
    req.logger.warn(`${cmd.name} does not use the setting(s) ${unused.join(', ')}; ignored`);
  return cmd.run(ctx);
}
