import { mergeOptionSpecs, type OptionSpec, type OutputSpec } from '../core/options';
import { COMMON_OPTIONS, EVERYWHERE_OPTIONS } from './common-options';
import { needsModelCommand } from './needs-model';
import { buildAmiCommand } from './build-ami';
import { pruneAmisCommand } from './prune-amis';
import { aliasCommand } from './alias';
import { benchmarkReportCommand } from './benchmark-report';
import { fetchModelCommand } from './fetch-model';
import { deployCommand, endpointStatusCommand, undeployCommand } from './deploy';
import { demoteCommand } from './demote';
import { describeCommand } from './describe';
import { downloadCommand } from './download';
import { findCommand } from './find';
import { promoteCommand } from './promote';
import { rotateCommand } from './rotate';
import { statusCommand } from './status';
import { sweepCommand } from './sweep';
import { trainCommand } from './train';
import type { CommandDef } from './types';

/** The dispatch table: one entry per command, shared by the action, the CLI and the orb generator. */
export const COMMANDS: Readonly<Record<string, CommandDef>> = Object.fromEntries(
  [
    needsModelCommand,
    trainCommand,
    buildAmiCommand,
    pruneAmisCommand,
    sweepCommand,
    promoteCommand,
    demoteCommand,
    rotateCommand,
    statusCommand,
    describeCommand,
    downloadCommand,
    findCommand,
    aliasCommand,
    fetchModelCommand,
    benchmarkReportCommand,
    deployCommand,
    endpointStatusCommand,
    undeployCommand,
  ].map((c) => [c.name, c]),
);

export function commandNames(): string[] {
  return Object.keys(COMMANDS);
}

/** Every option any command reads: the one table behind action.yml inputs, CLI flags and orb parameters. */
export function allOptions(): OptionSpec[] {
  return mergeOptionSpecs([COMMON_OPTIONS, ...Object.values(COMMANDS).map((c) => c.options)]);
}

/**
 * What a command reads: the shared options every command reads (EVERYWHERE_OPTIONS), then its own list,
 * which names the shared ones it reads too (the store, config-path, sha). Help, the orb's parameters and
 * the action's "does not use" warning follow it; reading an undeclared option throws (core/options.ts).
 */
export function optionsOf(command: CommandDef): OptionSpec[] {
  const declared = new Set(command.options.map((o) => o.name));
  const everywhere = new Set<string>(EVERYWHERE_OPTIONS.map((o) => o.name));
  const shared = COMMON_OPTIONS.filter((o) => everywhere.has(o.name) || declared.has(o.name));
  return mergeOptionSpecs([shared, command.options]);
}

export function allOutputs(): OutputSpec[] {
  const byName = new Map<string, OutputSpec>();
  for (const c of Object.values(COMMANDS))
    for (const o of c.outputs) if (!byName.has(o.name)) byName.set(o.name, o);
  return [...byName.values()];
}
