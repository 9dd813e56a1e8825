import type { OptionSpec } from '../core/options';
import type { CommandDef } from '../commands/types';

function flagLine(s: OptionSpec): string {
  const names = [`--${s.name}`, ...(s.cliAliases ?? []).map((a) => `--${a}`)].join(', ');
  const value = s.type === 'boolean' ? '' : s.choices ? ` <${s.choices.join('|')}>` : ' <value>';
  const extra = [
    s.default !== undefined && s.default !== '' ? `default: ${s.default}` : '',
    s.env?.[0] ? `env: ${s.env[0]}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  return `  ${names}${value}\n      ${s.description}${extra ? ` (${extra})` : ''}`;
}

export function generalHelp(commands: readonly CommandDef[], version: string): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `model-pipeline ${version}: run the model pipeline from CI or a laptop`,
    '',
    'Usage: model-pipeline <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global flags: --json (print outputs as JSON), --local (use the local backend),',
    "  --output-file FILE (append outputs as MP_NAME='value' lines, e.g. to $BASH_ENV), --help, --version",
    'Run "model-pipeline <command> --help" for the options of a command.',
    'Exit codes: 0 done, 1 failed, 2 bad input.',
  ].join('\n');
}

export function commandHelp(cmd: CommandDef, specs: readonly OptionSpec[]): string {
  return [
    `Usage: model-pipeline ${cmd.name} [options]`,
    '',
    cmd.summary,
    '',
    'Options:',
    ...specs.map(flagLine),
    '',
    'Outputs:',
    ...cmd.outputs.map((o) => `  ${o.name}: ${o.description}`),
  ].join('\n');
}
