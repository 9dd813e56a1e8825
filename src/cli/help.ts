import type { OptionSpec } from '../core/options';
import type { CommandDef } from '../commands/types';

function flagLine(s: OptionSpec): string {
  const negatable = s.type === 'boolean';
  const names = [
    `--${s.name}`,
    ...(negatable ? [`--no-${s.name}`] : []),
    ...(s.cliAliases ?? []).map((a) => `--${a}`),
  ].join(', ');
  const value = s.type === 'boolean' ? '' : s.choices ? ` <${s.choices.join('|')}>` : ' <value>';
  const extra = [
    s.default !== undefined && s.default !== '' ? `default: ${s.default}` : '',
    s.env?.[0] ? `env: ${s.env[0]}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  return `  ${names}${value}\n      ${s.description}${extra ? ` (${extra})` : ''}`;
}

/** The flags every command takes; --local only where the command has a local backend. */
function globalFlagLines(settingsFile: OptionSpec | undefined, hasBackend: boolean): string[] {
  return [
    '  --json\n      Print the outputs as JSON on stdout (booleans, numbers and lists typed); logs stay on stderr.',
    ...(hasBackend
      ? [
          '  --local\n      Use the local backend: the folder store (--local-store) and local processes (= --backend local).',
        ]
      : []),
    "  --output-file <file>\n      Append the outputs as MP_NAME='value' lines (e.g. to $BASH_ENV in CircleCI).",
    ...(settingsFile ? [flagLine(settingsFile)] : []),
    '  --help, -h / --version',
  ];
}

export function generalHelp(commands: readonly CommandDef[], version: string): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `model-pipeline ${version}: run the model pipeline from CI or a laptop`,
    '',
    'Usage: model-pipeline <command> [options]',
    '       model-pipeline help <command>',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global flags: --json (print outputs as typed JSON), --local (use the local backend),',
    "  --output-file FILE (append outputs as MP_NAME='value' lines, e.g. to $BASH_ENV),",
    '  --settings-file FILE (MODEL_PIPELINE_* settings), --help, --version',
    'Booleans: --flag, --no-flag, --flag=true|false or --flag true|false.',
    'Run "model-pipeline help <command>" for the options of a command.',
    'Exit codes: 0 done, 1 failed, 2 bad input.',
  ].join('\n');
}

/** Only the options this command reads, then the global flags, then its outputs. */
export function commandHelp(cmd: CommandDef, specs: readonly OptionSpec[]): string {
  const settingsFile = specs.find((s) => s.name === 'settings-file');
  const own = specs.filter((s) => s.name !== 'settings-file');
  return [
    `Usage: model-pipeline ${cmd.name} [options]`,
    '',
    cmd.summary,
    '',
    'Options:',
    ...own.map(flagLine),
    '',
    'Global flags:',
    ...globalFlagLines(
      settingsFile,
      specs.some((s) => s.name === 'backend'),
    ),
    '',
    'Outputs:',
    ...cmd.outputs.map((o) => `  ${o.name}: ${o.description}`),
  ].join('\n');
}
