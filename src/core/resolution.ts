import type { ModelId } from './identity';

/**
 * The one resolution rule: which stored folder is "the model of commit C". Every command that needs the model
 * of a commit (needs-model, train, promote, fetch-model, describe, download, status, benchmark-report) asks
 * this function, so a merge commit, a squash, a rebase or a cherry-pick finds the model reviewed on the branch
 * instead of asking for a second training. See docs/store-layout.md ("Which folder is the model of a commit").
 */

/** What C's model is built from: version, config content and (with `model-sources`) source tree hashes. */
export interface ModelInputs {
  version: string;
  /** sha256 of the config file's bytes. */
  configSha256: string;
  /** `model-sources` path -> git object hash at C; undefined when the option names no paths. */
  sources?: Readonly<Record<string, string>>;
}

export interface ModelOfCommitQuery {
  inputs: ModelInputs;
  /** Full sha of C. */
  sha: string;
  /** The folder C's own model has (`<version>-<sha7 of C>/` under the scope): built when nothing serves. */
  ownFolder: string;
}

/** One folder of the same scope, as the store and git describe it. */
export interface StoredModel {
  folder: string;
  id: ModelId;
  /** model.zip and manifest.json are both there. */
  complete: boolean;
  /** Facts of its manifest; undefined when there is none or it does not parse. */
  manifest?: {
    configSha256?: string;
    sources?: Readonly<Record<string, string>>;
    /** Full sha of the commit it was built from. */
    commit?: string;
  };
  /** When it was completed (its manifest's time): "newest" compares this. */
  created: Date;
  /** How its commit relates to C; the caller asks git only for folders that serve. Default 'other'. */
  relation?: 'ancestor' | 'other';
}

export type ResolutionRule = 'this-commit' | 'ancestor' | 'newest';

export type Resolution =
  | { found: true; folder: string; rule: ResolutionRule; reason: string }
  | {
      found: false;
      /** The folder to build: C's own. */
      folder: string;
      /** C's own folder holds files but no complete model (an interrupted run). */
      partial: boolean;
      reason: string;
    };

/** Whether a stored folder was built from the same model inputs as C, and if not, the first difference. */
export function sameInputs(q: ModelOfCommitQuery, m: StoredModel): { ok: true } | { ok: false; why: string } {
  if (m.id.version !== q.inputs.version) return { ok: false, why: `version ${m.id.version}` };
  if (!m.complete) return { ok: false, why: 'incomplete (no model.zip or manifest.json)' };
  const man = m.manifest;
  if (!man) return { ok: false, why: 'manifest unreadable' };
  if (man.configSha256 !== q.inputs.configSha256)
    return {
      ok: false,
      why: man.configSha256 ? 'other config content (sha256 differs)' : 'no config sha256 in its manifest',
    };
  const wanted = q.inputs.sources;
  if (wanted) {
    const have = man.sources;
    if (!have) return { ok: false, why: 'its manifest records no model-sources' };
    const paths = Object.keys(wanted).sort();
    const stored = Object.keys(have).sort();
    if (paths.join('\0') !== stored.join('\0'))
      return {
        ok: false,
        why: `model-sources ${stored.join(', ') || '(none)'} recorded, not ${paths.join(', ')}`,
      };
    for (const p of paths) if (wanted[p] !== have[p]) return { ok: false, why: `other content of ${p}` };
  }
  return { ok: true };
}

/** The folders that serve C, before git is asked about ancestry: the caller looks up only these. */
export function servingCandidates(q: ModelOfCommitQuery, stored: readonly StoredModel[]): StoredModel[] {
  return stored.filter((m) => m.folder !== q.ownFolder && sameInputs(q, m).ok);
}

function describeInputs(q: ModelOfCommitQuery): string {
  const sources = q.inputs.sources ? Object.keys(q.inputs.sources) : [];
  return `version ${q.inputs.version}, config sha256 ${q.inputs.configSha256.slice(0, 12)}…${sources.length ? `, ${sources.join(', ')}` : ''}`;
}

/**
 * The rule, in order:
 * 1. C's own folder `<version>-<sha7 of C>/`, when complete (rule `this-commit`).
 * 2. Otherwise a complete folder of exactly the same version (`1.2.1` never matches `1.2.10`) whose manifest
 *    records the same config sha256 and, when `model-sources` names paths, the same git object hash of each:
 *    first those whose commit is an ancestor of C (rule `ancestor`: a merge commit reuses the branch's model),
 *    then any (rule `newest`: a squash, rebase or cherry-pick); among several, the newest.
 * 3. Otherwise none: C's own folder is to be built.
 */
export function resolveModelOfCommit(q: ModelOfCommitQuery, stored: readonly StoredModel[]): Resolution {
  const own = stored.find((m) => m.folder === q.ownFolder);
  if (own?.complete)
    return {
      found: true,
      folder: own.folder,
      rule: 'this-commit',
      reason: `this commit's own model ${own.id.name} is in the store`,
    };
  const serving = servingCandidates(q, stored);
  const newestFirst = (a: StoredModel, b: StoredModel): number =>
    b.created.getTime() - a.created.getTime() || (a.folder < b.folder ? 1 : a.folder > b.folder ? -1 : 0);
  const ancestors = serving.filter((m) => m.relation === 'ancestor').sort(newestFirst);
  if (ancestors.length > 0) {
    const m = ancestors[0];
    return {
      found: true,
      folder: m.folder,
      rule: 'ancestor',
      reason: `${m.id.name} was built from an ancestor commit with the same inputs (${describeInputs(q)})`,
    };
  }
  const others = [...serving].sort(newestFirst);
  if (others.length > 0) {
    const m = others[0];
    return {
      found: true,
      folder: m.folder,
      rule: 'newest',
      reason: `${m.id.name} has the same inputs (${describeInputs(q)}); newest of ${others.length} such folder(s), its commit is not an ancestor (squash, rebase or cherry-pick)`,
    };
  }
  const sameVersion = stored.filter((m) => m.id.version === q.inputs.version && m.folder !== q.ownFolder);
  const misses = sameVersion
    .slice(0, 3)
    .map((m) => {
      const r = sameInputs(q, m);
      return `${m.id.name}: ${r.ok ? 'same inputs' : r.why}`;
    })
    .join('; ');
  return {
    found: false,
    folder: q.ownFolder,
    partial: own !== undefined && !own.complete,
    reason: sameVersion.length
      ? `no stored model of version ${q.inputs.version} has this commit's inputs (${misses}${sameVersion.length > 3 ? '; …' : ''})`
      : `no stored model of version ${q.inputs.version}`,
  };
}
