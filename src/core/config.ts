import { parse as parseToml, TomlError } from 'smol-toml';
import * as z from './schema';
import { valid as semverValid } from 'semver';
import { createHash } from 'node:crypto';
import { UserError } from './errors';

/** The model config (search-config.toml): a semver `version`, an optional `name`, free-form training keys. */
export interface ModelConfig {
  path: string;
  version: string;
  name?: string;
  /** Every key of the file, for the training command and manifests. */
  values: Record<string, unknown>;
  /** sha256 of the file's bytes: two models with the same hash were built from the same config. */
  hash: string;
}

const schema = z.looseObject({
  version: z.string({ error: (iss) => (iss.input === undefined ? 'is missing' : 'must be a string') }),
  name: z.optional(
    z
      .string()
      .check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'may hold only letters, digits, ".", "_" and "-"')),
  ),
});

/** Line (1-based) where a top-level key is assigned, for error messages. */
export function lineOfKey(text: string, key: string): number | undefined {
  const lines = text.split(/\r?\n/);
  const pattern = new RegExp(`^\\s*["']?${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']?\\s*=`);
  for (let i = 0; i < lines.length; i++) {
    if (/^\s*\[/.test(lines[i])) return undefined; // past the top-level table
    if (pattern.test(lines[i])) return i + 1;
  }
  return undefined;
}

export function parseModelConfig(text: string, path: string): ModelConfig {
  let values: Record<string, unknown>;
  try {
    values = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const reason = err.message.split('\n')[0].replace(/^Invalid TOML document:\s*/i, '');
      throw new UserError(`${path}:${err.line}:${err.column}: invalid TOML: ${reason}`);
    }
    throw new UserError(`${path}: invalid TOML: ${String(err)}`);
  }
  const result = schema.safeParse(values);
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = issue.path.join('.') || 'version';
    const line = lineOfKey(text, key);
    throw new UserError(`${path}${line ? `:${line}` : ''}: key "${key}" ${issue.message}`);
  }
  const version = result.data.version.trim();
  if (!semverValid(version) || semverValid(version) !== version) {
    const line = lineOfKey(text, 'version');
    throw new UserError(
      `${path}${line ? `:${line}` : ''}: key "version" must be a semantic version like 1.2.3, got "${version}"`,
    );
  }
  return {
    path,
    version,
    name: result.data.name,
    values,
    hash: createHash('sha256').update(text).digest('hex'),
  };
}
