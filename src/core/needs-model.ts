import { compare as semverCompare } from 'semver';
import type { ModelId } from './identity';
import type { Resolution } from './resolution';

/** The base label of a repository's first commit: there is nothing before it to compare with. */
export const FIRST_COMMIT = 'the first commit';

/** The facts the decision needs, gathered by the command from git and the store. */
export interface NeedsModelFacts {
  id: ModelId;
  /** The config's version at the base ref; undefined when the file does not exist there (a new model). */
  baseVersion: string | undefined;
  /** How the base reads in messages; FIRST_COMMIT when there is none (the repository's first commit). */
  baseRef: string;
  /** What the resolution rule found for this commit (src/core/resolution.ts). */
  resolution: Resolution;
  force: boolean;
  /** Another run holds a live lease on this commit's folder: it is training it now (who, until when). */
  training?: string;
}

/** Which rule decided: the resolution rule's (a stored folder serves) or the version rule's. */
export type NeedsModelRule =
  'this-commit' | 'ancestor' | 'newest' | 'forced' | 'new-model' | 'version-bump' | 'rollback' | 'unchanged';

export interface NeedsModelDecision {
  needsModel: boolean;
  rule: NeedsModelRule;
  reason: string;
  /** The folder that serves the commit (no build), or the one to build. */
  folder: string;
  /** Set when another run is training the model now (the folder is under lease). */
  training?: string;
}

/**
 * First the resolution rule: a stored folder built from the same inputs serves the commit, so nothing is built
 * (force builds this commit's own folder anyway, but never twice). Only when none serves does the version rule
 * decide: a bump, a new config or a rollback with no stored model of its inputs builds `<version>-<sha7>`; an
 * unchanged version does not.
 */
export function decideNeedsModel(f: NeedsModelFacts): NeedsModelDecision {
  const d = decideByRules(f);
  if (!f.training || d.rule === 'this-commit') return d;
  // the decision stays: if the other run fails, this one's train takes over once the lease expires
  return { ...d, training: f.training, reason: `training: ${f.training}; ${d.reason}` };
}

function decideByRules(f: NeedsModelFacts): NeedsModelDecision {
  const { id, resolution: r } = f;
  if (r.found && r.rule === 'this-commit')
    return {
      needsModel: false,
      rule: 'this-commit',
      folder: r.folder,
      reason: `a complete model ${id.name} is already in the store`,
    };
  const own = r.found ? undefined : r;
  const partial = own?.partial ? ' (an incomplete earlier attempt will be replaced)' : '';
  const ownFolder = own?.folder ?? '';
  if (f.force) {
    const skipped = r.found ? `; ${r.folder} has the same inputs but force builds this commit's own` : '';
    return {
      needsModel: true,
      rule: 'forced',
      folder: ownFolder || r.folder,
      reason: `forced: no complete model ${id.name} in the store${partial}${skipped}`,
    };
  }
  if (r.found)
    return { needsModel: false, rule: r.rule, folder: r.folder, reason: `reuses ${r.folder}: ${r.reason}` };
  if (f.baseVersion === undefined) {
    return {
      needsModel: true,
      rule: 'new-model',
      folder: ownFolder,
      reason:
        f.baseRef === FIRST_COMMIT
          ? `new model: this is the repository's first commit, with nothing before it to compare with; no model ${id.name} in the store${partial}`
          : `new model: the config does not exist at ${f.baseRef}; no model ${id.name} in the store${partial}`,
    };
  }
  const order = semverCompare(id.version, f.baseVersion);
  if (order === 0) {
    return {
      needsModel: false,
      rule: 'unchanged',
      folder: ownFolder,
      reason: `version ${id.version} is unchanged against ${f.baseRef} (${r.reason}; bump the version or set force to build one)`,
    };
  }
  if (order < 0) {
    return {
      needsModel: true,
      rule: 'rollback',
      folder: ownFolder,
      reason: `version ${id.version} is lower than ${f.baseVersion} at ${f.baseRef}, a rollback, but ${r.reason}: building ${id.name}${partial}`,
    };
  }
  return {
    needsModel: true,
    rule: 'version-bump',
    folder: ownFolder,
    reason: `version changed ${f.baseVersion} -> ${id.version} against ${f.baseRef} and no model ${id.name} is in the store${partial}`,
  };
}
