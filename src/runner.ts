import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseDotenv } from './core/dotenv';
import { UserError } from './core/errors';
import { resolveOptions, unknownInputs, unknownSettingWarnings, type Dialect } from './core/options';
import type { PipelineOptions } from './commands/option-table';
import type { Progress } from './core/progress';
import type { Logger, StateStore } from './core/ports';
import { allOptions, COMMANDS, commandNames, optionsOf } from './commands';
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
  /** How messages name options: CLI flags, action inputs or orb parameters (default: action inputs). */
  dialect?: Dialect;
  /** Progress of long transfers (the CLI draws a bar in a terminal); default: lines in the log. */
  progress?: Progress;
}

/**
 * MODEL_PIPELINE_* variables read by something other than an option: the CLI's own switches and the
 * variables train gives the training command (which may itself run model-pipeline).
 */
export const OTHER_VARIABLES = [
  'MODEL_PIPELINE_DEBUG',
  'MODEL_PIPELINE_DIALECT',
  'MODEL_PIPELINE_CODE_CACHE_DIR',
  'MODEL_PIPELINE_NO_CODE_CACHE',
  'MODEL_PIPELINE_CONFIG',
  'MODEL_PIPELINE_DATA',
  'MODEL_PIPELINE_MODEL_VERSION',
  'MODEL_PIPELINE_MODEL_SHA',
  'MODEL_PIPELINE_ROLE_ARN',
  // where train's ssh-cidr: auto asks for the runner's address (README)
  'MODEL_PIPELINE_CHECKIP_URL',
] as const;

/** Unknown MODEL_PIPELINE_* names in the environment or the settings file, with the nearest known name. */
export function settingTypos(
  env: Record<string, string | undefined>,
  settingsFile: Record<string, string> | undefined,
  settingsFileName: string | undefined,
): string[] {
  const specs = allOptions();
  return [
    ...unknownSettingWarnings(
      Object.keys(env).filter((k) => env[k] !== undefined),
      specs,
      OTHER_VARIABLES,
      'the environment',
    ),
    ...(settingsFile
      ? unknownSettingWarnings(
          Object.keys(settingsFile),
          specs,
          OTHER_VARIABLES,
          `settings file ${settingsFileName}`,
        )
      : []),
  ];
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
  req: Pick<RunRequest, 'inputs' | 'env' | 'cwd' | 'dialect'> & { logger?: Logger },
): Promise<PipelineOptions> {
  const specs = optionsOf(cmd);
  const dialect = req.dialect;
  const first = resolveOptions(
    specs.filter((s) => s.name === 'settings-file' || s.name === 'working-directory'),
    { inputs: req.inputs, env: req.env, dialect },
  );
  const wd = path.resolve(req.cwd, first.require('working-directory'));
  const settingsFileName = first.string('settings-file');
  const settingsFile = await readSettingsFile(settingsFileName, wd);
  for (const line of settingTypos(req.env, settingsFile, settingsFileName)) req.logger?.warn(line);
  // the commands' tables are typed by src/commands/option-table.ts; the specs resolved here are the same rows
  return resolveOptions(specs, {
    inputs: req.inputs,
    env: req.env,
    settingsFile,
    dialect,
  }) as unknown as PipelineOptions;
}

/** `warnTypos`: report unknown MODEL_PIPELINE_* names (once per run: the action's post step does not). */
export async function buildContext(
  cmd: CommandDef,
  req: RunRequest,
  warnTypos = false,
): Promise<CommandContext> {
  const options = await resolveFor(cmd, { ...req, logger: warnTypos ? req.logger : undefined });
  for (const spec of optionsOf(cmd)) {
    const v = options.raw(spec.name);
    if (spec.secret && typeof v === 'string' && v) req.logger.mask(v);
  }
  const deps = createDeps(options, {
    logger: req.logger,
    state: req.state,
    env: req.env,
    cwd: req.cwd,
    progress: req.progress,
    signal: req.signal,
  });
  return { options, deps, signal: req.signal };
}

export async function runCommand(req: RunRequest): Promise<CommandResult> {
  const cmd = findCommand(req.command);
  const ctx = await buildContext(cmd, req, true);
  // the action reads every command's inputs; one this command ignores is most likely a mistake
  const given = Object.keys(req.inputs).filter((k) => req.inputs[k] !== undefined && req.inputs[k] !== '');
  const unused = unknownInputs(optionsOf(cmd), given);
  if (unused.length > 0)
    req.logger.warn(`${cmd.name} does not use the setting(s) ${unused.join(', ')}; ignored`);
  return cmd.run(ctx);
}
