import { parseDuration } from './duration';
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

/** How `--json` prints an output; action outputs and `MP_*` lines are always strings. */
export type OutputType = 'string' | 'boolean' | 'integer' | 'json';

export interface OutputSpec {
  name: string;
  description: string;
  /** Default `string`. `json` outputs hold a JSON text (lists, objects). */
  type?: OutputType;
}

export type OptionValue = string | boolean | number | string[];

/**
 * Keeps a spec's literal name, type, choices and default, so the table can be read as a type:
 * `defineOptions([...])` and `defineOption({...})` instead of annotating with OptionSpec.
 */
export function defineOption<const S extends OptionSpec>(spec: S): S {
  return spec;
}
export function defineOptions<const T extends readonly OptionSpec[]>(specs: T): T {
  return specs;
}
export function defineOutput<const S extends OutputSpec>(spec: S): S {
  return spec;
}

/** The value one spec resolves to; `undefined` only when the spec has no default (and is no flag or list). */
type BaseValueOf<S extends OptionSpec> = S['type'] extends 'boolean'
  ? boolean
  : S['type'] extends 'integer'
    ? number
    : S['type'] extends 'list'
      ? string[]
      : S extends { choices: readonly (infer C extends string)[] }
        ? C
        : string;
export type ValueOf<S extends OptionSpec> = S['type'] extends 'boolean' | 'list'
  ? BaseValueOf<S>
  : S extends { default: string }
    ? BaseValueOf<S>
    : BaseValueOf<S> | undefined;

/** A mapped type over an option table: option name -> the type of its resolved value. */
export type OptionValues<S extends OptionSpec> = { [T in S as T['name']]: ValueOf<T> };

type LooseValues = Record<string, OptionValue | undefined>;
type IsLoose<V> = string extends keyof V ? true : false;
type KeysWhere<V, T> = { [K in keyof V & string]: V[K] extends T ? K : never }[keyof V & string];
/** With a typed table only the names of the right kind compile; untyped (tests' ad-hoc specs) any name. */
type NameOf<V, T> = IsLoose<V> extends true ? string : KeysWhere<V, T>;
type Ret<V, K, T> = IsLoose<V> extends true ? T : K extends keyof V ? V[K] : never;
/** A string option read as seconds: a number when the option has a default (never unset), else number | undefined. */
type Seconds<V, K> =
  IsLoose<V> extends true
    ? number | undefined
    : K extends keyof V
      ? undefined extends V[K]
        ? number | undefined
        : number
      : never;

/**
 * Who is reading the settings, so messages name options the way that user writes them: `--dry-run` /
 * `--no-dry-run` on the CLI, the `dry-run` input in a workflow, the `dry_run` parameter in the orb.
 */
export type Dialect = 'cli' | 'action' | 'orb';

/** The orb's parameter for an option: `dry-run` -> `dry_run`. */
export function orbParamName(name: string): string {
  return name.replace(/-/g, '_');
}

/**
 * An option as the user of `dialect` writes it: `mention('cli', 'dry-run', false)` is `--no-dry-run`,
 * `mention('action', 'dry-run', false)` is `dry-run: false`, `mention('orb', 'dry-run')` the `dry_run` parameter.
 */
export function mention(dialect: Dialect, name: string, value?: string | boolean): string {
  if (dialect === 'cli') {
    if (value === undefined || value === true) return `--${name}`;
    if (value === false) return `--no-${name}`;
    return `--${name} ${value}`;
  }
  const key = dialect === 'orb' ? orbParamName(name) : name;
  if (value === undefined) return dialect === 'orb' ? `the ${key} parameter` : `the ${key} input`;
  return `${key}: ${String(value)}`;
}

export interface OptionSources {
  /** Names options in messages; default `action`. */
  dialect?: Dialect;
  /** Action inputs or CLI flags, by option name; '' counts as not given (the runner's empty input). */
  inputs: Record<string, string | undefined>;
  env: Record<string, string | undefined>;
  settingsFile?: Record<string, string>;
}

function convert(spec: OptionSpec, raw: string, from: string, dialect: Dialect): OptionValue {
  const where = from === 'input' ? mention(dialect, spec.name) : `${spec.name} (from ${from})`;
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

/**
 * Typed view of resolved settings; `require` gives the clear error users need when one is missing.
 * Typed by the option table (src/commands/option-table.ts), a misspelt name or a read of the wrong kind
 * does not compile, and an option with a default reads as a value, never `undefined`.
 */
export class Options<V extends object = LooseValues> {
  constructor(
    private readonly values: Map<string, OptionValue>,
    private readonly origins: Map<string, string>,
    /** Names this command resolved; reading any other is a programming error, not a missing setting. */
    private readonly known?: ReadonlySet<string>,
    /** How messages name options (see `mention`). */
    readonly dialect: Dialect = 'action',
  ) {}

  /** The option as this run's user writes it, for hints: `--no-dry-run`, `dry-run: false`, `dry_run: false`. */
  mention(name: keyof V & string, value?: string | boolean): string {
    return mention(this.dialect, name, value);
  }

  private get(name: string): OptionValue | undefined {
    if (this.known && !this.known.has(name))
      throw new Error(`option "${name}" is not among the options of this command`);
    return this.values.get(name);
  }
  has(name: keyof V & string): boolean {
    return this.values.has(name);
  }
  origin(name: keyof V & string): string | undefined {
    return this.origins.get(name);
  }
  /** Untyped read for code that walks the table itself (masking secrets, generated docs). */
  raw(name: string): OptionValue | undefined {
    return this.values.get(name);
  }
  string<K extends NameOf<V, string | undefined>>(name: K): Ret<V, K, string | undefined> {
    const v = this.get(name);
    return (v === undefined ? undefined : String(v)) as Ret<V, K, string | undefined>;
  }
  require<K extends NameOf<V, string | undefined>>(name: K): string {
    const v = this.get(name);
    if (v === undefined || v === '')
      throw new UserError(`missing required setting: set ${mention(this.dialect, name)}`);
    return String(v);
  }
  /** A duration option in seconds (6h, 90m, 3600); undefined when unset. Errors name it as the user writes it. */
  duration<K extends NameOf<V, string | undefined>>(name: K): Seconds<V, K> {
    const v = this.get(name);
    return (
      v === undefined || v === '' ? undefined : parseDuration(String(v), mention(this.dialect, name))
    ) as Seconds<V, K>;
  }
  bool<K extends NameOf<V, boolean>>(name: K): boolean {
    return this.get(name) === true;
  }
  int<K extends NameOf<V, number | undefined>>(name: K): Ret<V, K, number | undefined> {
    const v = this.get(name);
    return (typeof v === 'number' ? v : undefined) as Ret<V, K, number | undefined>;
  }
  list<K extends NameOf<V, string[]>>(name: K): string[] {
    const v = this.get(name);
    return Array.isArray(v) ? v : [];
  }
  toRecord(): Record<string, OptionValue> {
    return Object.fromEntries(this.values);
  }
}

/** inputs/flags first, then environment variables, then the settings file, then the default. */
export function resolveOptions<S extends OptionSpec = OptionSpec>(
  specs: readonly S[],
  sources: OptionSources,
): Options<OptionSpec extends S ? LooseValues : OptionValues<S>> {
  const values = new Map<string, OptionValue>();
  const origins = new Map<string, string>();
  for (const spec of specs) {
    let raw: string | undefined;
    let from = '';
    const input = sources.inputs[spec.name];
    if (input !== undefined && input.trim() !== '') {
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
    values.set(spec.name, convert(spec, raw, from, sources.dialect ?? 'action'));
    origins.set(spec.name, from);
  }
  return new Options(values, origins, new Set(specs.map((s) => s.name)), sources.dialect);
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

/** Edit distance (insertions, deletions, substitutions), for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The known name closest to `given`, when it is close enough to be a typo of it. */
export function nearestName(given: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(given, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(given.length / 4)) ? best : undefined;
}

/**
 * `MODEL_PIPELINE_*` variables no option reads (and that are not among `extra`): almost always typos, such
 * as MODEL_PIPELINE_BUKET. One line each, with the nearest known name when there is one.
 */
export function unknownSettingWarnings(
  given: Iterable<string>,
  specs: readonly OptionSpec[],
  extra: readonly string[],
  where: string,
  prefix = 'MODEL_PIPELINE_',
): string[] {
  const known = new Set([
    ...specs.flatMap((s) => (s.env ?? []).filter((e) => e.startsWith(prefix))),
    ...extra,
  ]);
  const out: string[] = [];
  for (const name of given) {
    if (!name.startsWith(prefix) || known.has(name)) continue;
    const near = nearestName(name, known);
    out.push(`${where} sets ${name}, which no setting reads${near ? `; did you mean ${near}?` : ''}`);
  }
  return out;
}
