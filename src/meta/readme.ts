import { markdownTable } from '../core/markdown';
import type { OptionSpec, OutputSpec } from '../core/options';
import { outputEnvName } from '../cli/output-file';
import { orbName, orbParameter } from './orb';

/** Structural shape of a command the README needs (CommandDef without `run`). */
export interface ReadmeCommandSource {
  name: string;
  summary: string;
  options: readonly OptionSpec[];
  outputs: readonly OutputSpec[];
}

/** Generated README sections live between `<!-- NAME:start -->` and `<!-- NAME:end -->`. */
export function replaceSection(text: string, name: string, body: string, file = 'README.md'): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`${file}: markers ${start} ... ${end} are missing or out of order`);
  return `${text.slice(0, i + start.length)}\n${body.trimEnd()}\n${text.slice(j)}`;
}

function code(s: string): string {
  return s === '' ? '' : `\`${s}\``;
}

export function commandsTable(commands: readonly ReadmeCommandSource[]): string {
  return markdownTable(
    ['command', 'what it does'],
    commands.map((c) => [code(c.name), c.summary]),
  );
}

/** One row per option: the action input, CLI flag, orb parameter and variables it is read from. */
export function optionsTable(
  options: readonly OptionSpec[],
  commands: readonly ReadmeCommandSource[],
  commonNames: ReadonlySet<string>,
): string {
  const usedBy = (name: string): string => {
    if (commonNames.has(name)) return 'all';
    const users = commands.filter((c) => c.options.some((o) => o.name === name)).map((c) => c.name);
    const others = commands.map((c) => c.name).filter((n) => !users.includes(n));
    if (users.length > 3 && others.length <= 3) return `all but ${others.join(', ')}`;
    return users.join(', ');
  };
  return markdownTable(
    ['input / `--flag`', 'orb parameter', 'commands', 'default', 'environment', 'description'],
    options.map((s) => {
      const p = orbParameter(s);
      return [
        code(s.name) +
          (s.cliAliases?.length ? ` (${s.cliAliases.map((a) => code(`--${a}`)).join(', ')})` : ''),
        code(orbName(s.name)) + (p.type === 'env_var_name' ? ' (env var name)' : ''),
        usedBy(s.name),
        code(s.default ?? ''),
        (s.env ?? []).map(code).join(', '),
        s.description +
          (s.choices ? ` One of: ${s.choices.join(', ')}.` : '') +
          (s.secret ? ' Secret: masked.' : ''),
      ];
    }),
  );
}

export function outputsTable(
  outputs: readonly OutputSpec[],
  commands: readonly ReadmeCommandSource[],
): string {
  return markdownTable(
    ['output', 'orb / `--output-file` variable', 'commands', 'description'],
    outputs.map((o) => [
      code(o.name),
      code(outputEnvName(o.name)),
      commands
        .filter((c) => c.outputs.some((x) => x.name === o.name))
        .map((c) => c.name)
        .join(', '),
      o.description,
    ]),
  );
}

export function renderReadme(
  current: string,
  commands: readonly ReadmeCommandSource[],
  options: readonly OptionSpec[],
  outputs: readonly OutputSpec[],
  commonNames: ReadonlySet<string>,
): string {
  let text = replaceSection(current, 'commands', commandsTable(commands));
  text = replaceSection(text, 'options', optionsTable(options, commands, commonNames));
  text = replaceSection(text, 'outputs', outputsTable(outputs, commands));
  return text;
}
