import { compare as semverCompare } from 'semver';
import { MANIFEST_FILE, MODEL_FILE } from './manifest';
import { ENVIRONMENTS, type Environment, type ModelFolder } from './registry';
import { createdAt } from './rotation';

export interface StatusRow {
  prefix: string;
  /** Model name sub-folder, '' for a single-model store. */
  model: string;
  version: string;
  sha: string;
  /** Bytes of model.zip (0 when there is none). */
  modelSize: number;
  /** Bytes of every object of the folder (what rotate frees). */
  folderSize: number;
  created: string;
  complete: boolean;
  /** Environments with a marker; the ones whose pointer names this folder are `current`. */
  environments: Environment[];
  current: Environment[];
  /** Verdict the manifest records (`passed` / `failed`) and a metrics headline; '' when none. */
  benchmark: string;
  /** This folder is the model of the commit status ran at (the resolution rule). */
  thisCommit?: boolean;
  /** Another run holds a live lease on the folder and is training it now: who. */
  training?: string;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** One row per model folder, newest version first, then newest build. */
export function statusRows(
  folders: Iterable<ModelFolder>,
  root: string,
  pointed: ReadonlyMap<string, readonly Environment[]>,
  benchmarks: ReadonlyMap<string, string>,
  thisCommit?: string,
  training: ReadonlyMap<string, string> = new Map(),
): StatusRow[] {
  const base = root === '' ? '' : root.replace(/\/*$/, '/');
  const rows = [...folders].map((f): StatusRow => {
    const model = f.scope.slice(base.length).replace(/\/$/, '');
    const zip = f.objects.find((o) => o.name === MODEL_FILE);
    const folderSize = f.objects.reduce((n, o) => n + o.size, 0);
    const names = new Set(f.objects.map((o) => o.name));
    return {
      prefix: f.folder,
      model,
      version: f.id.version,
      sha: f.id.sha7,
      modelSize: zip ? zip.size : 0,
      folderSize,
      created: createdAt(f).toISOString(),
      complete: names.has(MODEL_FILE) && names.has(MANIFEST_FILE),
      environments: ENVIRONMENTS.filter((e) => f.markers.has(e)),
      current: ENVIRONMENTS.filter((e) => (pointed.get(f.folder) ?? []).includes(e)),
      benchmark: benchmarks.get(f.folder) ?? '',
      ...(thisCommit === f.folder ? { thisCommit: true } : {}),
      ...(training.has(f.folder) ? { training: training.get(f.folder) } : {}),
    };
  });
  return rows.sort(
    (a, b) =>
      (a.model < b.model ? -1 : a.model > b.model ? 1 : 0) ||
      semverCompare(b.version, a.version) ||
      (a.created < b.created ? 1 : a.created > b.created ? -1 : 0),
  );
}

/** Sizes say what they count: model.zip alone, and the whole folder (what rotate deletes). */
export const STATUS_HEADER = [
  'prefix',
  'version',
  'sha',
  'model.zip',
  'folder',
  'created',
  'environments',
  'benchmark',
];

export function statusCells(r: StatusRow): string[] {
  const envs = r.environments.map((e) => (r.current.includes(e) ? `${e}*` : e));
  // a pointer without a marker should not happen, but must still show
  for (const e of r.current) if (!r.environments.includes(e)) envs.push(`${e}* (no marker)`);
  return [
    r.thisCommit ? `${r.prefix} (this commit)` : r.prefix,
    r.version,
    r.sha,
    r.modelSize ? formatBytes(r.modelSize) : '-',
    formatBytes(r.folderSize),
    r.created.replace(/\.\d{3}Z$/, 'Z'),
    envs.join(', ') || (r.complete ? '-' : r.training ? `training (${r.training})` : 'incomplete'),
    r.benchmark || '-',
  ];
}
