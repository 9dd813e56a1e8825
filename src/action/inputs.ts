import type { OptionSpec } from '../core/options';

/** The runner passes input `foo-bar` as INPUT_FOO-BAR (upper-cased, spaces to underscores). */
export function inputEnvName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

/**
 * Inputs read straight from the environment, so an unset input stays unset (action.yml sets no defaults).
 * INPUT_FOO_BAR is read too when INPUT_FOO-BAR is absent: shells cannot export a name with a dash, so
 * wrappers and local runners (e.g. a composite step's `env:` written by hand) often use underscores.
 */
export function readInputs(
  specs: readonly OptionSpec[],
  env: Record<string, string | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of specs) {
    const name = inputEnvName(s.name);
    const v = env[name] ?? env[name.replace(/-/g, '_')];
    if (v !== undefined && v.trim() !== '') out[s.name] = v.trim();
  }
  return out;
}

/**
 * Every value a secret option could take (its input and its environment variables), and each of its lines,
 * for the runner to mask before anything is parsed: an error while parsing can then never show one.
 */
export function secretValues(
  specs: readonly OptionSpec[],
  env: Record<string, string | undefined>,
): string[] {
  const out = new Set<string>();
  for (const s of specs) {
    if (!s.secret) continue;
    const name = inputEnvName(s.name);
    for (const raw of [env[name], env[name.replace(/-/g, '_')], ...(s.env ?? []).map((e) => env[e])]) {
      const v = raw?.trim();
      if (!v) continue;
      out.add(v);
      for (const line of v.split(/\r?\n/)) if (line.trim().length > 3) out.add(line.trim());
    }
  }
  return [...out];
}
