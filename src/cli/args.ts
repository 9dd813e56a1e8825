import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../core/errors';
import { nearestName, type OptionSpec } from '../core/options';

export interface CliArgs {
  command?: string;
  /** `help <command>`: the command whose help to print. */
  helpFor?: string;
  inputs: Record<string, string>;
  json: boolean;
  help: boolean;
  version: boolean;
  /** --local was given (it sets backend=local when the command has a backend). */
  local: boolean;
  /** --output-file: where to append the outputs as `MP_NAME='value'` lines. */
  outputFile?: string;
  /** --summary-file: where to append the Markdown summary (CircleCI has no step summary). */
  summaryFile?: string;
}

type ParseOptions = NonNullable<ParseArgsConfig['options']>;

/** Flags of the CLI itself, not of the option table. */
export const GLOBAL_FLAGS = ['json', 'help', 'version', 'local', 'output-file', 'summary-file'] as const;

const TRUE_WORDS = ['true', 'yes', 'on', '1'];
const FALSE_WORDS = ['false', 'no', 'off', '0'];

/**
 * Booleans in every spelling a user tries: `--flag`, `--no-flag`, `--flag=true|false`, `--flag true|false`.
 * node's parseArgs knows only the first two, so the others are rewritten to them first.
 */
export function normalizeBooleans(argv: string[], booleans: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const m = /^--([^=]+)(?:=(.*))?$/s.exec(arg);
    if (!m || !booleans.has(m[1])) {
      out.push(arg);
      continue;
    }
    const name = m[1];
    let value = m[2];
    const next = argv[i + 1]?.toLowerCase();
    if (value === undefined && next !== undefined && [...TRUE_WORDS, ...FALSE_WORDS].includes(next)) {
      value = next;
      i++;
    }
    if (value === undefined) {
      out.push(arg);
      continue;
    }
    const v = value.trim().toLowerCase();
    if (!TRUE_WORDS.includes(v) && !FALSE_WORDS.includes(v))
      throw new UserError(
        `--${name} takes true or false (or write --${name} / --no-${name}), got "${value}"`,
      );
    const positive = name.startsWith('no-') && booleans.has(name.slice(3)) ? name.slice(3) : name;
    const on = TRUE_WORDS.includes(v) === (positive === name);
    out.push(
      on ? `--${positive}` : booleans.has(`no-${positive}`) ? `--no-${positive}` : `--${positive}=false`,
    );
  }
  return out;
}

/** CLI flags come from the same option table as the action inputs; `--local` is `--backend local`. */
export function parseCliArgs(
  argv: string[],
  specs: readonly OptionSpec[],
  /** Says why a flag of another command is refused here (`alias does not read --config-path ...`). */
  notHere?: (flag: string) => string | undefined,
): CliArgs {
  const options: ParseOptions = {
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
    local: { type: 'boolean' },
    'output-file': { type: 'string' },
    'summary-file': { type: 'string' },
  };
  const GLOBAL: readonly string[] = GLOBAL_FLAGS;
  const aliasOf = new Map<string, string>();
  const negationOf = new Map<string, string>();
  const booleans = new Set(['json', 'help', 'version', 'local']);
  for (const s of specs) {
    options[s.name] = { type: s.type === 'boolean' ? 'boolean' : 'string' };
    if (s.type === 'boolean') booleans.add(s.name);
    for (const a of s.cliAliases ?? []) {
      options[a] = { type: s.type === 'boolean' ? 'boolean' : 'string' };
      aliasOf.set(a, s.name);
      if (s.type === 'boolean') booleans.add(a);
    }
    // --no-<flag> turns off a boolean whose default is true (the orb's run.sh uses it too)
    if (s.type === 'boolean' && !specs.some((o) => o.name === `no-${s.name}`)) {
      options[`no-${s.name}`] = { type: 'boolean' };
      negationOf.set(`no-${s.name}`, s.name);
      booleans.add(`no-${s.name}`);
    }
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: normalizeBooleans(argv, booleans),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    const message = (err as Error).message.replace(/\. To specify a positional.*$/s, '');
    const missing = /^Option '(?:-\w, )?--([^ ']+)[^']*' argument missing/.exec(message)?.[1];
    if (missing)
      throw new UserError(`--${missing} needs a value (--${missing} <value> or --${missing}=<value>)`);
    const unknown = /^Unknown option '--([^']+)'/.exec(message)?.[1];
    if (unknown) {
      const elsewhere = notHere?.(unknown.replace(/^no-/, ''));
      if (elsewhere) throw new UserError(elsewhere);
      const near = nearestName(unknown, Object.keys(options));
      throw new UserError(`unknown option --${unknown}${near ? `; did you mean --${near}?` : ''}`);
    }
    throw new UserError(message);
  }
  const { values, positionals } = parsed;
  const helpFor = positionals[0] === 'help' ? positionals[1] : undefined;
  const expected = positionals[0] === 'help' ? 2 : 1;
  if (positionals.length > expected) {
    const extra = positionals.slice(expected);
    // `--force maybe`: the word was meant as the boolean's value
    const at = argv.indexOf(extra[0]);
    const flag = at > 0 ? /^--([^=]+)$/.exec(argv[at - 1])?.[1] : undefined;
    if (flag && booleans.has(flag) && !GLOBAL.includes(flag))
      throw new UserError(
        `--${flag} takes true or false (or write --${flag} / --no-${flag}), got "${extra[0]}"`,
      );
    throw new UserError(`unexpected arguments: ${extra.join(' ')}`);
  }
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
  const local = Boolean(values.local);
  if (local && specs.some((s) => s.name === 'backend')) {
    if (inputs.backend && inputs.backend !== 'local')
      throw new UserError('--local conflicts with --backend ' + inputs.backend);
    inputs.backend = 'local';
  }
  return {
    command: positionals[0] === 'help' ? undefined : positionals[0],
    helpFor,
    inputs,
    json: Boolean(values.json),
    help: Boolean(values.help) || positionals[0] === 'help',
    version: Boolean(values.version),
    local,
    outputFile: typeof values['output-file'] === 'string' ? values['output-file'] : undefined,
    summaryFile: typeof values['summary-file'] === 'string' ? values['summary-file'] : undefined,
  };
}
