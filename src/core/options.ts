import { UserError } from './errors';

/**
 * One row per setting. The same rows become action.yml inputs, CLI flags (--name) and orb parameters
 * (name_with_underscores), so the three cannot drift apart.
 */
export type OptionType = 'string' | 'boolean' | 'integer' | 'list';

export interface OptionSpec {
  /** kebab-case: the action input and the CLI flag. */
  name: string;
  description: string;
  type: OptionType;
  /** Used when no input, variable or settings-file entry gives a value. */
  default?: string;
  /** Environment / settings-file variables read, first match wins. */
  env?: readonly string[];
  choices?: readonly string[];
  /** Masked in logs as soon as it is read. */
  secret?: boolean;
  /** Extra CLI spellings, e.g. --config for config-path. */
  cliAliases?: readonly string[];
}

export interface OutputSpec {
  name: string;
  description: string;
}

export type OptionValue = string | boolean | number | string[];

export interface OptionSources {
  /** Action inputs or CLI flags, by option name; '' counts as not given (the runner's empty input). */
  inputs: Record<string, string | undefined>;
  env: Record<string, string | undefined>;
  settingsFile?: Record<string, string>;
}

function convert(spec: OptionSpec, raw: string, from: string): OptionValue {
  const where = `${spec.name} (from ${from})`;
  // a value from the settings file or of a secret option is never echoed: it may be (or sit beside) a secret
  const got = spec.secret || from.startsWith('settings file') ? '' : `, got "${raw}"`;
  switch (spec.type) {
    case 'boolean': {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off', ''].includes(v)) return false;
      throw new UserError(`${where} must be true or false${got}`);
    }
    case 'integer': {
      if (!/^\s*-?\d+\s*$/.test(raw)) throw new UserError(`${where} must be a whole number${got}`);
      return Number.parseInt(raw, 10);
    }
    case 'list':
      return raw
        .split(/[\n,]/)
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    default: {
      const v = raw.trim();
      if (spec.choices && !spec.choices.includes(v)) {
        throw new UserError(`${where} must be one of ${spec.choices.join(', ')}${got.replace(',', ';')}`);
      }
      return v;
    }
  }
}

/** Typed view of resolved settings; `require` gives the clear error users need when one is missing. */
export class Options {
  constructor(
    private readonly values: Map<string, OptionValue>,
    private readonly origins: Map<string, string>,
  ) {}

  has(name: string): boolean {
    return this.values.has(name);
  }
  origin(name: string): string | undefined {
    return this.origins.get(name);
  }
  string(name: string): string | undefined {
    const v = this.values.get(name);
    return v === undefined ? undefined : String(v);
  }
  require(name: string): string {
    const v = this.string(name);
    if (v === undefined || v === '') throw new UserError(`missing required setting "${name}"`);
    return v;
  }
  bool(name: string): boolean {
    return this.values.get(name) === true;
  }
  int(name: string): number | undefined {
    const v = this.values.get(name);
    return typeof v === 'number' ? v : undefined;
  }
  list(name: string): string[] {
    const v = this.values.get(name);
    return Array.isArray(v) ? v : [];
  }
  toRecord(): Record<string, OptionValue> {
    return Object.fromEntries(this.values);
  }
}

/** inputs/flags first, then environment variables, then the settings file, then the default. */
export function resolveOptions(specs: readonly OptionSpec[], sources: OptionSources): Options {
  const values = new Map<string, OptionValue>();
  const origins = new Map<string, string>();
  for (const spec of specs) {
    let raw: string | undefined;
    let from = '';
    const input = sources.inputs[spec.name];
    if (input !== undefined && input !== '') {
      raw = input;
      from = 'input';
    }
    for (const name of spec.env ?? []) {
      if (raw !== undefined) break;
      const v = sources.env[name];
      if (v !== undefined && v !== '') {
        raw = v;
        from = `$${name}`;
      }
    }
    for (const name of spec.env ?? []) {
      if (raw !== undefined) break;
      const v = sources.settingsFile?.[name];
      if (v !== undefined && v !== '') {
        raw = v;
        from = `settings file ${name}`;
      }
    }
    if (raw === undefined && spec.default !== undefined) {
      raw = spec.default;
      from = 'default';
    }
    if (raw === undefined) continue;
    values.set(spec.name, convert(spec, raw, from));
    origins.set(spec.name, from);
  }
  return new Options(values, origins);
}

/** Inputs named in no spec are almost always typos: say so instead of ignoring them. */
export function unknownInputs(specs: readonly OptionSpec[], given: string[]): string[] {
  const known = new Set(specs.map((s) => s.name));
  return given.filter((g) => !known.has(g));
}

/** Merges option lists from several commands; one name must mean one thing everywhere. */
export function mergeOptionSpecs(lists: readonly (readonly OptionSpec[])[]): OptionSpec[] {
  const byName = new Map<string, OptionSpec>();
  for (const list of lists) {
    for (const spec of list) {
      const seen = byName.get(spec.name);
      if (seen && seen !== spec && JSON.stringify(seen) !== JSON.stringify(spec)) {
        throw new Error(`option "${spec.name}" is defined twice with different meanings`);
      }
      byName.set(spec.name, spec);
    }
  }
  return [...byName.values()];
}
