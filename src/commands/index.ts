import { mergeOptionSpecs, type OptionSpec, type OutputSpec } from '../core/options';
import { COMMON_GROUPS, COMMON_OPTIONS, type CommonGroup } from './common-options';
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

/** The shared option groups each command reads (see COMMON_GROUPS); help, inputs and the orb follow it. */
export const COMMON_GROUPS_OF: Readonly<Record<string, readonly CommonGroup[]>> = {
  'needs-model': ['store', 'repo'],
  train: ['store', 'repo'],
  'build-ami': ['repo'],
  'prune-amis': [],
  sweep: ['store'],
  promote: ['store', 'repo'],
  demote: ['store', 'repo'],
  rotate: ['store', 'repo'],
  status: ['store', 'repo'],
  describe: ['store', 'repo'],
  download: ['store', 'repo'],
  find: ['store', 'repo'],
  alias: ['store', 'repo'],
  'fetch-model': ['store', 'repo'],
  'benchmark-report': ['store', 'repo'],
  deploy: ['store', 'repo'],
  'endpoint-status': ['store', 'repo'],
  undeploy: ['store', 'repo'],
};

/** Shared options this command reads (its groups, and those every command reads). */
export function commonOptionsOf(command: CommandDef): OptionSpec[] {
  const groups = COMMON_GROUPS_OF[command.name];
  if (!groups) throw new Error(`command ${command.name} is missing from COMMON_GROUPS_OF`);
  const grouped = new Map<string, CommonGroup>();
  for (const [group, names] of Object.entries(COMMON_GROUPS))
    for (const n of names) grouped.set(n, group as CommonGroup);
  return COMMON_OPTIONS.filter((o) => {
    const group = grouped.get(o.name);
    return group === undefined || groups.includes(group);
  });
}

export function optionsOf(command: CommandDef): OptionSpec[] {
  return mergeOptionSpecs([commonOptionsOf(command), command.options]);
}

export function allOutputs(): OutputSpec[] {
  const byName = new Map<string, OutputSpec>();
  for (const c of Object.values(COMMANDS))
    for (const o of c.outputs) if (!byName.has(o.name)) byName.set(o.name, o);
  return [...byName.values()];
}
