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
