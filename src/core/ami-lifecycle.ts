import * as semver from 'semver';
import { UserError } from './errors';
import type { MachineImage } from './ports';

/** Tags build-ami puts on the images it makes; prune-amis touches nothing without TAG_MANAGED = 'true'. */
export const TAG_MANAGED = 'model-pipeline';
export const TAG_AMI_VERSION = 'model-pipeline:ami-version';
export const TAG_GIT_SHA = 'model-pipeline:git-sha';
export const TAG_REPO = 'model-pipeline:repo';
export const TAG_BUILT_AT = 'model-pipeline:built-at';

export type ImageSummary = MachineImage;

/** The AMI version: semver (a leading `v` is not accepted, so tags compare as written). */
export function parseAmiVersion(raw: string, where: string): string {
  const v = raw.trim();
  if (v === '') throw new UserError(`${where} is empty: it must hold the AMI version, e.g. 1.0.0`);
  if (semver.valid(v) !== v) {
    throw new UserError(`${where} must be a semantic version like 1.2.0, got "${v.slice(0, 80)}"`);
  }
  return v;
}

/**
 * The AMI version file (`.packer/ami-version.txt`): one version line; blank lines and `#` comment lines are
 * allowed so the file can say what it is for. The one reader build-ami, train and prune-amis use.
 */
export function parseAmiVersionFile(text: string, file: string): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length !== 1) {
    throw new UserError(
      `AMI version file ${file} must hold one version line (e.g. 1.0.0), found ${lines.length}`,
    );
  }
  return parseAmiVersion(lines[0], `AMI version file ${file}`);
}

export function isManaged(image: ImageSummary): boolean {
  return image.tags[TAG_MANAGED] === 'true';
}

/** Images that stand for a version: not failed or already gone. Pending ones count (a build in flight). */
export function isLive(image: ImageSummary): boolean {
  return !['deregistered', 'failed', 'invalid', 'error'].includes(image.state ?? 'available');
}

export interface BuildDecisionInput {
  version: string;
  /** Live AMIs tagged with this version. */
  existing: readonly ImageSummary[];
  versionFileChanged: boolean;
  force: boolean;
  versionFile: string;
  /** For the reason: `origin/main`, a short sha, or undefined for a first commit. */
  baseRef?: string;
}

export interface BuildDecision {
  build: boolean;
  reason: string;
  /** The AMI already standing for the version, when there is one (newest first). */
  existingId?: string;
}

/** Build when asked to (version file changed, or force), and never twice for one version. */
export function decideAmiBuild(i: BuildDecisionInput): BuildDecision {
  const existing = [...i.existing].sort(
    (a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0),
  );
  if (existing.length > 0) {
    const ids = existing.map((e) => e.id).join(', ');
    const reason = `an AMI tagged ${TAG_AMI_VERSION}=${i.version} already exists (${ids})`;
    return { build: false, reason, existingId: existing[0].id };
  }
  const base = i.baseRef ?? 'the first commit';
  if (i.force) return { build: true, reason: `force is set and no AMI has version ${i.version} yet` };
  if (i.versionFileChanged) {
    return { build: true, reason: `${i.versionFile} changed against ${base} (version ${i.version})` };
  }
  return {
    build: false,
    reason: `${i.versionFile} did not change against ${base}; set force to build version ${i.version}`,
  };
}

export interface PruneInput {
  images: readonly ImageSummary[];
  currentVersion: string;
  /** How many versions below the current one stay. */
  keep: number;
}

export interface PruneEntry {
  image: ImageSummary;
  version?: string;
  reason: string;
}

export interface PrunePlan {
  keep: PruneEntry[];
  deregister: PruneEntry[];
  /** Versions kept besides the current one, newest first. */
  keptVersions: string[];
}

/**
 * Keeps the current version, newer versions (another branch may be ahead) and `keep` versions below the
 * current one; every older managed AMI goes. AMIs without the managed tag or a semver version tag stay.
 */
export function planPrune(i: PruneInput): PrunePlan {
  if (!Number.isInteger(i.keep) || i.keep < 0) {
    throw new UserError(`keep must be a whole number >= 0, got ${i.keep}`);
  }
  const current = i.currentVersion;
  const older = new Set<string>();
  for (const img of i.images) {
    const v = img.tags[TAG_AMI_VERSION];
    if (isManaged(img) && v && semver.valid(v) === v && semver.lt(v, current)) older.add(v);
  }
  const keptOlder = [...older].sort(semver.rcompare).slice(0, i.keep);
  const keptSet = new Set(keptOlder);

  const plan: PrunePlan = { keep: [], deregister: [], keptVersions: keptOlder };
  for (const image of i.images) {
    const v = image.tags[TAG_AMI_VERSION];
    if (!isManaged(image)) {
      plan.keep.push({ image, version: v, reason: `not tagged ${TAG_MANAGED}=true: never touched` });
    } else if (!v || semver.valid(v) !== v) {
      plan.keep.push({ image, version: v, reason: `no semver ${TAG_AMI_VERSION} tag: left alone` });
    } else if (image.state === 'pending') {
      plan.keep.push({ image, version: v, reason: 'still being created' });
    } else if (semver.eq(v, current)) {
      plan.keep.push({ image, version: v, reason: 'current version' });
    } else if (semver.gt(v, current)) {
      plan.keep.push({ image, version: v, reason: `newer than the current version ${current}` });
    } else if (keptSet.has(v)) {
      plan.keep.push({ image, version: v, reason: `one of the ${i.keep} previous versions kept` });
    } else {
      plan.deregister.push({ image, version: v, reason: `older than the ${i.keep} kept previous versions` });
    }
  }
  const byVersion = (a: PruneEntry, b: PruneEntry): number =>
    a.version && b.version && semver.valid(a.version) && semver.valid(b.version)
      ? semver.rcompare(a.version, b.version) || a.image.id.localeCompare(b.image.id)
      : a.image.id.localeCompare(b.image.id);
  plan.keep.sort(byVersion);
  plan.deregister.sort(byVersion);
  return plan;
}
