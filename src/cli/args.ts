import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../core/errors';
import type { OptionSpec } from '../core/options';

export interface CliArgs {
  command?: string;
  inputs: Record<string, string>;
  json: boolean;
  help: boolean;
  version: boolean;
  /** --output-file: where to append the outputs as `MP_NAME='value'` lines. */
  outputFile?: string;
}

type ParseOptions = NonNullable<ParseArgsConfig['options']>;

/** CLI flags come from the same option table as the action inputs; `--local` is `--backend local`. */
export function parseCliArgs(argv: string[], specs: readonly OptionSpec[]): CliArgs {
  const options: ParseOptions = {
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
    local: { type: 'boolean' },
    'output-file': { type: 'string' },
  };
  const GLOBAL = ['json', 'help', 'version', 'local', 'output-file'];
  const aliasOf = new Map<string, string>();
  const negationOf = new Map<string, string>();
  for (const s of specs) {
    options[s.name] = { type: s.type === 'boolean' ? 'boolean' : 'string' };
    for (const a of s.cliAliases ?? []) {
      options[a] = { type: s.type === 'boolean' ? 'boolean' : 'string' };
      aliasOf.set(a, s.name);
    }
    // --no-<flag> lets a caller (the orb's run.sh) turn off a boolean whose default is true
    if (s.type === 'boolean' && !specs.some((o) => o.name === `no-${s.name}`)) {
      options[`no-${s.name}`] = { type: 'boolean' };
      negationOf.set(`no-${s.name}`, s.name);
    }
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UserError((err as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1) throw new UserError(`unexpected arguments: ${positionals.slice(1).join(' ')}`);
  const inputs: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    if (GLOBAL.includes(key) || value === undefined) continue;
    const negated = negationOf.get(key);
    if (negated !== undefined) {
      if (value && values[negated]) throw new UserError(`--${key} conflicts with --${negated}`);
      if (value) inputs[negated] = 'false';
      continue;
    }
    inputs[aliasOf.get(key) ?? key] = String(value);
  }
  if (values.local) {
    if (inputs.backend && inputs.backend !== 'local')
      throw new UserError('--local conflicts with --backend ' + inputs.backend);
    inputs.backend = 'local';
  }
  return {
    command: positionals[0],
    inputs,
    json: Boolean(values.json),
    help: Boolean(values.help),
    version: Boolean(values.version),
    outputFile: typeof values['output-file'] === 'string' ? values['output-file'] : undefined,
  };
}
