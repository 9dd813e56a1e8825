import { MODEL_SOURCES_OPTION, resolveTarget, singleTarget } from './model-context';
import { compare as semverCompare } from 'semver';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { extractMetrics, headline } from '../core/benchmark';
import { MANIFEST_FILE, parseManifest, type Manifest } from '../core/manifest';
import { PipelineError } from '../core/errors';
import { markdownTable, textTable } from '../core/markdown';
import { defineOptions } from '../core/options';
import { groupListing, parseEnvironment, placeOf, type Environment } from '../core/registry';
import { STATUS_HEADER, statusCells, statusRows } from '../core/status';
import { pointedFolders } from './rotate';
import {
  listAll,
  mapLimit,
  MODEL_NAME_OPTION,
  readPointer,
  scopeOf,
  storedMetrics,
  storeRoot,
} from './registry-context';
import { ENVIRONMENT_OPTION, REPO_OPTIONS, STORE_OPTIONS } from './common-options';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { folderOfRegistryKey } from '../core/lease';
import { liveLease } from './folder-lease';

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list)
  ...STORE_OPTIONS,
  ...REPO_OPTIONS,
  ENVIRONMENT_OPTION,
  MODEL_NAME_OPTION,
  MODEL_SOURCES_OPTION,
]);

/** `status --environment E`: the one folder deploy jobs need, from the pointer (markers only as a fallback). */
async function currentOf(ctx: CommandContext, env: Environment): Promise<CommandResult> {
  const store = ctx.deps.store();
  const scope = scopeOf(ctx);
  const { pointer } = await readPointer(store, scope, env);
  let prefix = pointer?.prefix;
  if (!prefix) {
    // stores written before the registry existed only have markers: take the newest marked model
    const { folders } = groupListing(await listAll(store, scope), storeRoot(ctx));
    const marked = [...folders.values()].filter((f) => f.scope === scope && f.markers.has(env));
    marked.sort((a, b) => semverCompare(b.id.version, a.id.version) || (a.folder < b.folder ? 1 : -1));
    if (marked.length === 0)
      throw new PipelineError(
        `no model is in ${env} under ${store.uri(scope)} (no pointer, no ${env} marker)`,
      );
    prefix = marked[0].folder;
    ctx.deps.logger.warn(`${env} has no registry pointer; using the highest marked version ${prefix}`);
  }
  return {
    outputs: { 'model-prefix': prefix, 'model-uri': store.uri(prefix), environment: env },
    text: prefix,
    summary: `### ${env}\n\n\`${prefix}\` (${store.uri(prefix)})\n`,
  };
}

/** The model of the commit status runs at, by the resolution rule; undefined without a config or a model. */
async function thisCommitFolder(ctx: CommandContext): Promise<string | undefined> {
  const p = ctx.options.string('config-path');
  if (!p || /[*?[{]/.test(p)) return undefined;
  try {
    await fs.access(path.resolve(ctx.deps.cwd, p));
    const target = await singleTarget(ctx);
    const { resolution } = await resolveTarget(ctx, target);
    return resolution.found ? resolution.folder : undefined;
  } catch {
    return undefined; // no config, no git: status still lists the store
  }
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const envName = ctx.options.string('environment');
  if (envName) return currentOf(ctx, parseEnvironment(envName));
  const store = ctx.deps.store();
  const root = storeRoot(ctx);
  const listPrefix = ctx.options.string('model-name') ? scopeOf(ctx) : root ? root + '/' : '';
  const { folders, registry } = groupListing(await listAll(store, listPrefix), root);
  const scopes = new Set<string>([scopeOf(ctx)]);
  for (const f of folders.values()) scopes.add(f.scope);
  for (const key of registry) {
    const p = placeOf(key, root);
    if (p.kind === 'registry') scopes.add(p.scope);
  }
  const pointed = await pointedFolders(store, scopes);
  // folders under a live lease are being trained now, even before their first file lands
  const training = new Map<string, string>();
  const now = ctx.deps.clock.now();
  await mapLimit(
    registry.map((k) => folderOfRegistryKey(k, 'leases')).filter((f): f is string => !!f),
    8,
    async (folder) => {
      const lease = await liveLease(store, folder, now);
      if (!lease) return;
      training.set(folder, `run ${lease.run}`);
      const place = placeOf(folder + 'x', root);
      if (place.kind === 'model' && !folders.has(folder))
        folders.set(folder, { scope: place.scope, folder, id: place.id, objects: [], markers: new Set() });
    },
  );
  // the same verdict describe shows: the manifest's, with a headline of the metrics it records
  const benchmarks = new Map<string, string>();
  const withManifest = [...folders.values()].filter((f) => f.objects.some((o) => o.name === MANIFEST_FILE));
  await mapLimit(withManifest, 8, async (f) => {
    const got = await store.get(f.folder + MANIFEST_FILE);
    let manifest: Manifest;
    try {
      manifest = parseManifest(got?.body.toString('utf8') ?? '', store.uri(f.folder + MANIFEST_FILE));
    } catch {
      benchmarks.set(f.folder, 'unreadable manifest');
      return;
    }
    let metrics = manifest.metrics ? new Map(Object.entries(manifest.metrics.values)) : undefined;
    if (!metrics) {
      const stored = await storedMetrics(store, f.folder, manifest);
      try {
        metrics = stored ? extractMetrics(JSON.parse(stored.text)) : undefined;
      } catch {
        metrics = undefined;
      }
    }
    const verdict = manifest.benchmark ? (manifest.benchmark.passed ? 'passed' : 'FAILED') : '';
    const line = [verdict, metrics ? headline(metrics) : ''].filter(Boolean).join(': ');
    if (line) benchmarks.set(f.folder, line);
  });
  const thisCommit = await thisCommitFolder(ctx);
  const rows = statusRows(folders.values(), root, pointed, benchmarks, thisCommit, training);
  const cells = rows.map(statusCells);
  const where = store.uri(listPrefix);
  const text = rows.length === 0 ? `no models under ${where}` : textTable(STATUS_HEADER, cells);
  const summary =
    `### models in ${where}\n\n` +
    (rows.length === 0
      ? 'none\n'
      : `${markdownTable(STATUS_HEADER, cells)}\n\n\\* current model of the environment; the model.zip column is the size of that file, the folder column of everything in the folder (what rotate frees)\n`);
  return {
    outputs: { models: JSON.stringify(rows), count: String(rows.length) },
    text,
    summary,
  };
}

export const statusCommand: CommandDef = {
  name: 'status',
  summary:
    'Show every model folder with version, sha, size, environments and benchmark; or the current prefix of an environment.',
  options: OPTIONS,
  outputs: [
    {
      name: 'models',
      description:
        'JSON list of model folders (prefix, version, sha, modelSize: bytes of model.zip, folderSize: bytes of the folder, created, environments, benchmark, thisCommit).',
    },
    { name: 'count', description: 'Number of model folders.' },
  ],
  run,
};
