import { MANIFEST_FILE } from './manifest';
import type { Environment, ModelFolder } from './registry';

/** Environments whose marker protects a model folder from rotation for good. */
export const PROTECTED_MARKERS: readonly Environment[] = ['staging', 'production'];

export interface Liveness {
  live: boolean;
  /** The live branch the commit is on, or why it counts as gone. */
  detail: string;
}

export interface RotationFacts {
  folders: Iterable<ModelFolder>;
  /** Folder -> environments whose pointer names it now. */
  pointed: ReadonlyMap<string, readonly Environment[]>;
  /** Folder -> whether its commit is on a live branch. A folder without an entry is kept ("unknown"). */
  liveness: ReadonlyMap<string, Liveness>;
  /** Folder -> store keys its manifest references (inputs, parents). Only kept folders' references count. */
  references: ReadonlyMap<string, readonly string[]>;
  now: Date;
  graceDays: number;
  keepPerVersion: number;
  /** Folder -> alias names that point at it (`_registry/aliases/*.json`). */
  aliases?: ReadonlyMap<string, readonly string[]>;
  /** Folder -> fetch-model deployment records of it (environment and time). */
  deployments?: ReadonlyMap<string, readonly { environment: string; at: Date }[]>;
  /**
   * Folder -> commits whose model it is by the resolution rule (e.g. `main head`): after a squash merge the
   * branch's folder is the model of main although its commit is on no live branch.
   */
  servesCommits?: ReadonlyMap<string, readonly string[]>;
}

export interface RotationEntry {
  folder: string;
  scope: string;
  version: string;
  created: Date;
  action: 'delete' | 'keep';
  reasons: string[];
  keys: string[];
  bytes: number;
}

export interface RotationPlan {
  entries: RotationEntry[];
  /** Every key to delete, manifests first: an interrupted run leaves incomplete folders, never broken models. */
  deleteKeys: string[];
  /** Candidates whose branch liveness the caller must look up, then plan again. */
  needLiveness: string[];
  /** Kept folders with a manifest whose references the caller has not supplied yet. */
  needManifests: string[];
}

/** When a folder was written: its manifest (written last) if there is one, else its newest object. */
export function createdAt(f: ModelFolder): Date {
  const manifest = f.objects.find((o) => o.name === MANIFEST_FILE);
  if (manifest) return manifest.lastModified;
  let newest = 0;
  for (const o of f.objects) newest = Math.max(newest, o.lastModified.getTime());
  return new Date(newest);
}

/** Newest write in a folder: a marker written yesterday means the model was promoted yesterday. */
export function lastActivity(f: ModelFolder): Date {
  let newest = 0;
  for (const o of f.objects) newest = Math.max(newest, o.lastModified.getTime());
  return new Date(newest);
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Decides, folder by folder, what rotation deletes. Keeps what anyone points at: staging/production markers, a
 * current environment pointer, an alias, a deployment record within the grace period, the model of a kept
 * commit by the resolution rule; and the newest N per version, anything written to within the grace period,
 * commits on a live branch (or not known to be gone), and folders a kept manifest references. Only whole model folders are
 * ever deleted; keys outside `<semver>-<sha7>/` folders never reach this function.
 */
export function planRotation(facts: RotationFacts): RotationPlan {
  const folders = [...facts.folders].sort((a, b) => (a.folder < b.folder ? -1 : a.folder > b.folder ? 1 : 0));
  const byFolder = new Map(folders.map((f) => [f.folder, f]));
  const keep = new Map<string, string[]>();
  const addKeep = (folder: string, reason: string): void => {
    const list = keep.get(folder);
    if (list) list.push(reason);
    else keep.set(folder, [reason]);
  };
  const created = new Map(folders.map((f) => [f.folder, createdAt(f)]));
  const cutoff = facts.now.getTime() - facts.graceDays * DAY_MS;

  // newest N per version, per model scope, by creation time (folder name breaks ties)
  const groups = new Map<string, ModelFolder[]>();
  for (const f of folders) {
    const k = `${f.scope}\u0000${f.id.version}`;
    const g = groups.get(k);
    if (g) g.push(f);
    else groups.set(k, [f]);
  }
  for (const g of groups.values()) {
    g.sort(
      (a, b) =>
        created.get(b.folder)!.getTime() - created.get(a.folder)!.getTime() ||
        (a.folder < b.folder ? 1 : a.folder > b.folder ? -1 : 0),
    );
    g.slice(0, Math.max(0, facts.keepPerVersion)).forEach((f, i) =>
      addKeep(
        f.folder,
        `newest ${i + 1} of version ${f.id.version} (keep-per-version ${facts.keepPerVersion})`,
      ),
    );
  }

  const needLiveness: string[] = [];
  for (const f of folders) {
    for (const env of PROTECTED_MARKERS) if (f.markers.has(env)) addKeep(f.folder, `has a ${env} marker`);
    for (const env of facts.pointed.get(f.folder) ?? []) addKeep(f.folder, `current ${env} model`);
    for (const alias of facts.aliases?.get(f.folder) ?? []) addKeep(f.folder, `alias ${alias} points at it`);
    const recent = (facts.deployments?.get(f.folder) ?? []).filter((d) => d.at.getTime() > cutoff);
    if (recent.length > 0) {
      const last = recent.reduce((a, b) => (a.at > b.at ? a : b));
      addKeep(f.folder, `deployed to ${last.environment} within the grace period (${last.at.toISOString()})`);
    }
    for (const c of facts.servesCommits?.get(f.folder) ?? [])
      addKeep(f.folder, `the model of ${c} (resolution rule)`);
    const touched = lastActivity(f);
    if (touched.getTime() > cutoff)
      addKeep(
        f.folder,
        `written within the grace period (${facts.graceDays} days; last ${touched.toISOString()})`,
      );
    if (keep.has(f.folder)) continue;
    const l = facts.liveness.get(f.folder);
    if (!l) {
      needLiveness.push(f.folder);
      addKeep(f.folder, 'branch liveness unknown');
    } else if (l.live) addKeep(f.folder, `commit is on live branch ${l.detail}`);
  }

  // references of kept manifests protect whole folders; new keeps may reference more, so run to a fixpoint
  const sortedNames = folders.map((f) => f.folder);
  const folderOfRef = (ref: string): string[] => {
    const hits: string[] = [];
    for (let i = ref.indexOf('/'); i >= 0; i = ref.indexOf('/', i + 1)) {
      const candidate = ref.slice(0, i + 1);
      if (byFolder.has(candidate)) hits.push(candidate);
    }
    if (hits.length === 0) for (const name of sortedNames) if (name.startsWith(ref)) hits.push(name);
    return hits;
  };
  const needManifests = new Set<string>();
  const expanded = new Set<string>();
  for (let changed = true; changed;) {
    changed = false;
    for (const folder of [...keep.keys()]) {
      if (expanded.has(folder)) continue;
      expanded.add(folder);
      const refs = facts.references.get(folder);
      if (!refs) {
        if (byFolder.get(folder)?.objects.some((o) => o.name === MANIFEST_FILE)) needManifests.add(folder);
        continue;
      }
      for (const ref of refs) {
        if (ref === '') continue;
        for (const target of folderOfRef(ref)) {
          if (target === folder) continue;
          const wasKept = keep.has(target);
          addKeep(target, `referenced by the manifest of kept ${folder}`);
          if (!wasKept) changed = true;
        }
      }
    }
  }

  const entries: RotationEntry[] = [];
  const manifests: string[] = [];
  const rest: string[] = [];
  for (const f of folders) {
    const reasons = keep.get(f.folder);
    const keys = f.objects.map((o) => o.key);
    const bytes = f.objects.reduce((n, o) => n + o.size, 0);
    const base = {
      folder: f.folder,
      scope: f.scope,
      version: f.id.version,
      created: created.get(f.folder)!,
      keys,
      bytes,
    };
    if (reasons) {
      entries.push({ ...base, action: 'keep', reasons });
      continue;
    }
    const onlyDev = f.markers.has('development') ? 'only reached development' : 'never promoted';
    const age = Math.floor((facts.now.getTime() - lastActivity(f).getTime()) / DAY_MS);
    const gone = facts.liveness.get(f.folder)!.detail;
    entries.push({ ...base, action: 'delete', reasons: [onlyDev, gone, `untouched for ${age} days`] });
    for (const o of f.objects) (o.name === MANIFEST_FILE ? manifests : rest).push(o.key);
  }
  return { entries, deleteKeys: [...manifests, ...rest], needLiveness, needManifests: [...needManifests] };
}
