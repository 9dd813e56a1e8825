import type { OptionSpec } from '../core/options';
import type { CommandDef } from '../commands/types';
import { COMMON_OPTIONS } from '../commands/common-options';

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
    s.env?.length ? `env: ${s.env.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  return `  ${names}${value}\n      ${s.description}${extra ? ` (${extra})` : ''}`;
}

/** The flags every command takes; --local only where the command has a local backend. */
function globalFlagLines(everywhere: readonly OptionSpec[], hasBackend: boolean): string[] {
  return [
    '  --json\n      Print the outputs as JSON on stdout (booleans, numbers and lists typed); logs stay on stderr.',
    ...(hasBackend
      ? [
          '  --local\n      Use the local backend: the folder store (--local-store) and local processes (= --backend local).',
        ]
      : []),
    "  --output-file <file>\n      Append the outputs as MP_NAME='value' lines (e.g. a file a later job sources; in CircleCI $BASH_ENV gets export lines anyway).",
    '  --summary-file <file>\n      Append the Markdown summary (the step summary in GitHub) to this file, e.g. for store_artifacts in CircleCI.',
    ...everywhere.map(flagLine),
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
    "  --output-file FILE (append outputs as MP_NAME='value' lines to a file),",
    '  --summary-file FILE (append the Markdown summary),',
    '  --settings-file FILE (MODEL_PIPELINE_* settings), --help, --version',
    'Booleans: --flag, --no-flag, --flag=true|false or --flag true|false.',
    'Run "model-pipeline help <command>" for the options of a command.',
    'Exit codes: 0 done, 1 failed, 2 bad input.',
  ].join('\n');
}

const EVERYWHERE = new Set(['settings-file', 'working-directory']);
const SHARED = new Set<string>(COMMON_OPTIONS.map((o) => o.name));

/** Only the options this command reads (its own, then the shared ones), then the global flags and outputs. */
export function commandHelp(cmd: CommandDef, specs: readonly OptionSpec[]): string {
  const own = specs.filter((s) => !SHARED.has(s.name));
  const shared = specs.filter((s) => SHARED.has(s.name) && !EVERYWHERE.has(s.name));
  const everywhere = specs.filter((s) => EVERYWHERE.has(s.name));
  return [
    `Usage: model-pipeline ${cmd.name} [options]`,
    '',
    cmd.summary,
    '',
    ...(own.length > 0 ? ['Options:', ...own.map(flagLine), ''] : []),
    ...(shared.length > 0 ? ['Shared options:', ...shared.map(flagLine), ''] : []),
    'Global flags:',
    ...globalFlagLines(
      everywhere,
      specs.some((s) => s.name === 'backend'),
    ),
    '',
    'Outputs:',
    ...cmd.outputs.map((o) => `  ${o.name}: ${o.description}`),
  ].join('\n');
}
