import { compare as semverCompare } from 'semver';
import type { ModelId } from './identity';

/** The facts the decision needs, gathered by the command from git and the store. */
export interface NeedsModelFacts {
  id: ModelId;
  /** The config's version at the base ref; undefined when the file does not exist there (a new model). */
  baseVersion: string | undefined;
  baseRef: string;
  /** A complete model (model.zip + manifest) exists in the store for exactly this id. */
  completeInStore: boolean;
  /** Some files exist under the prefix but not a complete model (an interrupted run). */
  partialInStore: boolean;
  force: boolean;
  /** Another run holds a live lease on the folder: it is training this model now (who, until when). */
  training?: string;
}

export interface NeedsModelDecision {
  needsModel: boolean;
  reason: string;
  /** Set when another run is training the model now (the folder is under lease). */
  training?: string;
}

/**
 * Both rules must agree before a build: the version moved forward against the base ref (a lower version is a
 * rollback, served by the older model), and no complete model for this exact `<version>-<sha7>` exists yet,
 * so a re-run or a parallel job does not train twice.
 */
export function decideNeedsModel(f: NeedsModelFacts): NeedsModelDecision {
  const d = decideByVersion(f);
  if (!f.training || f.completeInStore) return d;
  // the decision stays: if the other run fails, this one's train takes over once the lease expires
  return { ...d, training: f.training, reason: `training: ${f.training}; ${d.reason}` };
}

function decideByVersion(f: NeedsModelFacts): NeedsModelDecision {
  const { id } = f;
  if (f.completeInStore) {
    return { needsModel: false, reason: `a complete model ${id.name} is already in the store` };
  }
  const partial = f.partialInStore ? ' (an incomplete earlier attempt will be replaced)' : '';
  if (f.force)
    return { needsModel: true, reason: `forced: no complete model ${id.name} in the store${partial}` };
  if (f.baseVersion === undefined) {
    return {
      needsModel: true,
      reason: `new model: the config does not exist at ${f.baseRef}; no model ${id.name} in the store${partial}`,
    };
  }
  const order = semverCompare(id.version, f.baseVersion);
  if (order === 0) {
    return { needsModel: false, reason: `version ${id.version} is unchanged against ${f.baseRef}` };
  }
  if (order < 0) {
    return {
      needsModel: false,
      reason: `version ${id.version} is lower than ${f.baseVersion} at ${f.baseRef}: a rollback reuses the older model`,
    };
  }
  return {
    needsModel: true,
    reason: `version changed ${f.baseVersion} -> ${id.version} against ${f.baseRef} and no model ${id.name} is in the store${partial}`,
  };
}
