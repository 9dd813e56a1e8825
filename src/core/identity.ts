import { valid as semverValid } from 'semver';
import { UserError } from './errors';

/** A model is named by the version in its config and the commit it was built from: `<version>-<sha7>`. */
export interface ModelId {
  version: string;
  sha7: string;
  /** `<version>-<sha7>`, the folder name in the store. */
  name: string;
}

const SHA7 = /^[0-9a-f]{7}$/;
const FULL_SHA = /^[0-9a-f]{7,40}$/;

/** Lower-cased, checked commit sha (7 to 40 hex characters). */
export function normalizeSha(sha: string): string {
  const lower = sha.trim().toLowerCase();
  if (!FULL_SHA.test(lower)) throw new UserError(`"${sha}" is not a git commit sha (7 to 40 hex characters)`);
  return lower;
}

export function modelId(version: string, sha: string): ModelId {
  if (!semverValid(version) || semverValid(version) !== version)
    throw new UserError(`model version "${version}" is not a semantic version (x.y.z)`);
  const sha7 = normalizeSha(sha).slice(0, 7);
  return { version, sha7, name: `${version}-${sha7}` };
}

/**
 * Reads a store folder name back into its parts. The sha is always the last 7 hex characters after a '-',
 * so pre-release versions (`1.2.0-rc.1-abc1234`) parse too. Anything else is not a model folder.
 */
export function parseModelName(name: string): ModelId | undefined {
  const trimmed = name.replace(/\/$/, '');
  const cut = trimmed.lastIndexOf('-');
  if (cut <= 0) return undefined;
  const version = trimmed.slice(0, cut);
  const sha7 = trimmed.slice(cut + 1);
  if (!SHA7.test(sha7) || !semverValid(version) || semverValid(version) !== version) return undefined;
  return { version, sha7, name: trimmed };
}

/** Joins store key parts with single slashes; an empty root prefix adds nothing. */
export function joinKey(...parts: string[]): string {
  return parts
    .map((p) => p.replace(/^\/+|\/+$/g, ''))
    .filter((p) => p.length > 0)
    .join('/');
}

/** The folder (ending in '/') holding one model, under an optional root prefix and model name. */
export function modelPrefix(root: string, id: ModelId, modelName?: string): string {
  return joinKey(root, modelName ?? '', id.name) + '/';
}
