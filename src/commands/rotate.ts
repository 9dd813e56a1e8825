import { PipelineError, UserError } from '../core/errors';
import { MANIFEST_FILE, parseManifest } from '../core/manifest';
import { markdownTable, textTable } from '../core/markdown';
import { defineOptions } from '../core/options';
import type { Git, ObjectStore } from '../core/ports';
import {
  aliasSchema,
  deploymentRecordSchema,
  ENVIRONMENTS,
  groupListing,
  parseJsonAs,
  placeOf,
  REGISTRY_DIR,
  registryKeys,
  type Environment,
  type ModelFolder,
} from '../core/registry';
import { parseModelConfig } from '../core/config';
import { joinKey, modelId, modelPrefix } from '../core/identity';
import { folderOfRegistryKey, retiringKey, STALE_RETIRING_SECONDS } from '../core/lease';
import { liveLease, runLabel } from './folder-lease';
import { planRotation, type Liveness, type RotationEntry, type RotationPlan } from '../core/rotation';
import { formatBytes } from '../core/status';
import { listAll, mapLimit, putOnce, readPointer, storeRoot } from './registry-context';
import { DRY_RUN_OPTION, MODEL_SOURCES_OPTION, resolveTarget } from './model-context';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';
import { rotateStepCaches } from './rotate-steps';
import { CONFIG_PATH_OPTION, STORE_OPTIONS } from './common-options';

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list)
  ...STORE_OPTIONS,
  CONFIG_PATH_OPTION,
  {
    name: 'grace-days',
    description: 'Rotation never deletes a model folder younger than this many days.',
    type: 'integer',
    default: '14',
    env: ['MODEL_PIPELINE_GRACE_DAYS'],
  },
  {
    name: 'keep-per-version',
    description: 'Rotation keeps the newest N model folders of each version, whatever else holds.',
    type: 'integer',
    default: '3',
    env: ['MODEL_PIPELINE_KEEP_PER_VERSION'],
  },
  DRY_RUN_OPTION,
  MODEL_SOURCES_OPTION,
]);

/** Every environment pointer of every scope, as folder -> environments. */
export async function pointedFolders(
  store: ObjectStore,
  scopes: Iterable<string>,
): Promise<Map<string, Environment[]>> {
  const pointed = new Map<string, Environment[]>();
  for (const scope of scopes) {
    for (const env of ENVIRONMENTS) {
      const { pointer } = await readPointer(store, scope, env);
      if (!pointer) continue;
      const folder = pointer.prefix.endsWith('/') ? pointer.prefix : pointer.prefix + '/';
      pointed.set(folder, [...(pointed.get(folder) ?? []), env]);
    }
  }
  return pointed;
}

/** Every alias of every scope, as folder -> alias names; a damaged alias record is warned about and skipped. */
export async function aliasedFolders(
  ctx: CommandContext,
  store: ObjectStore,
  scopes: Iterable<string>,
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const scope of scopes) {
    for (const o of await listAll(store, registryKeys.aliasDir(scope))) {
      const got = await store.get(o.key);
      if (!got) continue;
      try {
        const a = parseJsonAs(aliasSchema, got.body.toString('utf8'), store.uri(o.key));
        const folder = a.prefix.endsWith('/') ? a.prefix : a.prefix + '/';
        out.set(folder, [...(out.get(folder) ?? []), a.alias]);
      } catch (err) {
        ctx.deps.logger.warn(`${(err as Error).message}: this alias protects nothing`);
      }
    }
  }
  return out;
}

/** Folders a promote, demote or alias is about to reference (fresh claims), as folder -> what. */
async function claimedFolders(
  store: ObjectStore,
  scopes: Iterable<string>,
  now: Date,
): Promise<Map<string, string>> {
  const cutoff = now.getTime() - STALE_RETIRING_SECONDS * 1000;
  const claimed = new Map<string, string>();
  for (const scope of scopes) {
    for (const o of await listAll(store, joinKey(scope, REGISTRY_DIR, 'claims') + '/')) {
      const folder = folderOfRegistryKey(o.key, 'claims');
      if (!folder || o.lastModified.getTime() < cutoff) continue; // a claim that old is a dead run's
      claimed.set(folder, 'referenced (a promote, demote or alias is writing)');
    }
  }
  return claimed;
}

/**
 * Retiring markers of a rotate that died before it finished, on folders this rotate keeps: after an hour
 * they only block promotions, so they go.
 */
async function clearStaleRetiring(
  ctx: CommandContext,
  store: ObjectStore,
  scopes: Iterable<string>,
  doomed: ReadonlySet<string>,
): Promise<void> {
  const cutoff = ctx.deps.clock.now().getTime() - STALE_RETIRING_SECONDS * 1000;
  const stale: string[] = [];
  for (const scope of scopes) {
    for (const o of await listAll(store, joinKey(scope, REGISTRY_DIR, 'retiring') + '/')) {
      const folder = folderOfRegistryKey(o.key, 'retiring');
      if (!folder || doomed.has(folder) || o.lastModified.getTime() > cutoff) continue;
      ctx.deps.logger.warn(`${folder} was marked retiring by a rotate that did not finish: marker removed`);
      stale.push(o.key);
    }
  }
  if (stale.length > 0) await store.deleteMany(stale);
}

/**
 * Deployment records written within the grace period, as folder -> records. Record keys start with their
 * time, so only those newer than the cutoff are read.
 */
async function recentDeployments(
  ctx: CommandContext,
  store: ObjectStore,
  scopes: Iterable<string>,
  cutoff: Date,
): Promise<Map<string, { environment: string; at: Date }[]>> {
  const out = new Map<string, { environment: string; at: Date }[]>();
  const stamp = (d: Date): string =>
    d
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.(\d{3})Z$/, '$1Z');
  for (const scope of scopes) {
    for (const env of ENVIRONMENTS) {
      const dir = registryKeys.deploymentDir(scope, env);
      const recent = (await listAll(store, dir)).filter((o) => o.key.slice(dir.length) >= stamp(cutoff));
      await mapLimit(recent, 8, async (o) => {
        const got = await store.get(o.key);
        if (!got) return;
        try {
          const r = parseJsonAs(deploymentRecordSchema, got.body.toString('utf8'), store.uri(o.key));
          const folder = r.prefix.endsWith('/') ? r.prefix : r.prefix + '/';
          out.set(folder, [...(out.get(folder) ?? []), { environment: r.environment, at: new Date(r.at) }]);
        } catch (err) {
          ctx.deps.logger.warn(`${(err as Error).message}: skipped`);
        }
      });
    }
  }
  return out;
}

/**
 * The model of the default branch's head (and of HEAD) by the resolution rule: after a squash or rebase the
 * branch's folder is what main's commits resolve to, although the branch is gone.
 */
async function modelsOfHeads(ctx: CommandContext): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const git = ctx.deps.git;
  const refs = [await git.defaultBranch().catch(() => undefined), 'HEAD'].filter((r): r is string => !!r);
  const configPath = ctx.options.string('config-path');
  if (!configPath || /[*?[{]/.test(configPath)) return out;
  const seen = new Set<string>();
  for (const ref of refs) {
    try {
      const sha = await git.revParse(ref);
      if (seen.has(sha)) continue;
      seen.add(sha);
      const text = await git.showFile(sha, configPath);
      if (text === undefined) continue;
      const config = parseModelConfig(text, `${ref}:${configPath}`);
      const modelName = config.name;
      const id = modelId(config.version, sha);
      const target = { config, modelName, id, prefix: modelPrefix(storeRoot(ctx), id, modelName) };
      const { resolution } = await resolveTarget(ctx, target, sha);
      if (resolution.found)
        out.set(resolution.folder, [...(out.get(resolution.folder) ?? []), `${ref} (${sha.slice(0, 7)})`]);
    } catch (err) {
      ctx.deps.logger.debug(`no model of ${ref} to protect: ${(err as Error).message}`);
    }
  }
  return out;
}

/**
 * Branch liveness from git. A commit is live when an unmerged branch other than the default branch reaches
 * it; the default branch and branches already merged into it keep nothing alive (merged/deleted branches
 * count as gone), so models built there are covered by the other rules (markers, pointers, newest N, grace).
 */
class LivenessOracle {
  private refs?: { name: string; ref: string }[];
  private unresolved: string[] = [];
  private readonly cache = new Map<string, Liveness>();
  constructor(
    private readonly git: Git,
    private readonly log: (m: string) => void,
  ) {}

  private async resolveRef(name: string): Promise<string | undefined> {
    for (const candidate of [name, `origin/${name}`])
      if (await this.git.hasCommit(candidate)) return candidate;
    return undefined;
  }

  private async liveRefs(): Promise<{ name: string; ref: string }[]> {
    if (this.refs) return this.refs;
    const names = await this.git.liveBranches();
    if (names.length === 0)
      throw new PipelineError(
        'git lists no branches here; rotate needs a checkout of the repository with its branches',
      );
    const def = await this.git.defaultBranch();
    const defName = def?.replace(/^origin\//, '');
    const refs: { name: string; ref: string }[] = [];
    for (const name of names) {
      if (name === defName) continue;
      const ref = await this.resolveRef(name);
      if (!ref) {
        this.unresolved.push(name);
        continue;
      }
      if (def && (await this.git.isAncestor(ref, def))) {
        this.log(`branch ${name} is merged into ${def}: it keeps no model alive`);
        continue;
      }
      refs.push({ name, ref });
    }
    if (this.unresolved.length > 0)
      this.log(`cannot resolve branches ${this.unresolved.join(', ')}: their models are kept`);
    this.refs = refs;
    return refs;
  }

  async of(sha7: string): Promise<Liveness> {
    const cached = this.cache.get(sha7);
    if (cached) return cached;
    const refs = await this.liveRefs();
    let result: Liveness;
    if (this.unresolved.length > 0)
      result = { live: true, detail: `(unresolved: ${this.unresolved.join(', ')})` };
    else if (!(await this.git.hasCommit(sha7)))
      result = { live: false, detail: 'commit is not in the repository (its branch is gone)' };
    else {
      result = { live: false, detail: 'commit is on no live branch' };
      for (const r of refs) {
        if (await this.git.isAncestor(sha7, r.ref)) {
          result = { live: true, detail: r.name };
          break;
        }
      }
    }
    this.cache.set(sha7, result);
    return result;
  }
}

/** Manifest input keys that point into this store, as keys. */
function referencedKeys(store: ObjectStore, text: string, where: string): string[] {
  const manifest = parseManifest(text, where);
  const base = store.uri('');
  const out: string[] = [];
  for (const input of manifest.inputs ?? []) {
    let key = input.key;
    if (key.startsWith(base)) key = key.slice(base.length);
    else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(key)) continue; // another store: not ours to protect
    key = key.replace(/^\/+/, '');
    if (key) out.push(key);
  }
  return out;
}

export async function buildPlan(
  ctx: CommandContext,
): Promise<{ plan: RotationPlan; folders: Map<string, ModelFolder>; scopes: Set<string>; other: number }> {
  const store = ctx.deps.store();
  const root = storeRoot(ctx);
  const graceDays = ctx.options.int('grace-days');
  const keepPerVersion = ctx.options.int('keep-per-version');
  if (graceDays < 0) throw new UserError(`grace-days must be 0 or more, got ${graceDays}`);
  if (keepPerVersion < 0) throw new UserError(`keep-per-version must be 0 or more, got ${keepPerVersion}`);
  if (await ctx.deps.git.isShallow?.())
    throw new UserError(
      'rotate needs the full git history to tell live branches: this checkout is shallow (actions/checkout with fetch-depth: 0)',
    );

  const objects = await listAll(store, root ? root + '/' : '');
  const { folders, registry, other } = groupListing(objects, root);
  const scopes = new Set<string>([root ? root + '/' : '']);
  for (const f of folders.values()) scopes.add(f.scope);
  for (const key of registry) {
    const p = placeOf(key, root);
    if (p.kind === 'registry') scopes.add(p.scope);
  }
  const pointed = await pointedFolders(store, scopes);
  const now = ctx.deps.clock.now();
  const aliases = await aliasedFolders(ctx, store, scopes);
  const deployments = await recentDeployments(
    ctx,
    store,
    scopes,
    new Date(now.getTime() - graceDays * 24 * 3600 * 1000),
  );
  const servesCommits = await modelsOfHeads(ctx);
  const oracle = new LivenessOracle(ctx.deps.git, (m) => ctx.deps.logger.info(m));
  const liveness = new Map<string, Liveness>();
  const references = new Map<string, string[]>();
  const facts = () => ({
    folders: folders.values(),
    pointed,
    liveness,
    references,
    now,
    graceDays,
    keepPerVersion,
    aliases,
    deployments,
    servesCommits,
  });
  let plan = planRotation(facts());
  for (let round = 0; plan.needLiveness.length > 0 || plan.needManifests.length > 0; round++) {
    if (round > 1000) throw new PipelineError('rotation plan does not settle; please report this');
    if (plan.needLiveness.length > 0) {
      for (const folder of plan.needLiveness)
        liveness.set(folder, await oracle.of(folders.get(folder)!.id.sha7));
    } else {
      await mapLimit(plan.needManifests, 8, async (folder) => {
        const key = folder + MANIFEST_FILE;
        const got = await store.get(key);
        try {
          references.set(folder, got ? referencedKeys(store, got.body.toString('utf8'), store.uri(key)) : []);
        } catch (err) {
          // a kept model with an unreadable manifest protects nothing more, but it stays kept itself
          ctx.deps.logger.warn(`${(err as Error).message}`);
          references.set(folder, []);
        }
      });
    }
    plan = planRotation(facts());
  }
  return { plan, folders, scopes, other: other.length };
}

function planTable(entries: RotationEntry[], markdown: boolean, limit: number): string {
  if (entries.length === 0) return 'no model folders in the store';
  const rows = entries
    .slice(0, limit)
    .map((e) => [
      e.action,
      e.folder,
      formatBytes(e.bytes),
      e.created.toISOString().slice(0, 10),
      e.action === 'keep' ? e.reasons.join('; ') : '-',
      e.action === 'delete' ? e.reasons.join('; ') : '-',
    ]);
  const header = ['action', 'model folder', 'folder size', 'created', 'kept because', 'deleted because'];
  const more = entries.length > limit ? `\n… and ${entries.length - limit} more` : '';
  return (markdown ? markdownTable(header, rows) : textTable(header, rows)) + more;
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const store = ctx.deps.store();
  const dryRun = ctx.options.bool('dry-run');
  const { plan, scopes, other } = await buildPlan(ctx);
  let doomed = plan.entries.filter((e) => e.action === 'delete');
  const kept = plan.entries.filter((e) => e.action === 'keep');

  let deleted = 0;
  let requests = 0;
  if (!dryRun) {
    await clearStaleRetiring(ctx, store, scopes, new Set(doomed.map((e) => e.folder)));
  }
  if (!dryRun && doomed.length > 0) {
    // mark first: from here on promote, demote and alias refuse these folders
    const record = { schemaVersion: 1, run: runLabel(ctx.deps.ci), at: ctx.deps.clock.now().toISOString() };
    const marked = new Set<string>();
    await mapLimit(doomed, 8, async (e) => {
      const body = JSON.stringify({ ...record, folder: e.folder }, null, 2);
      if (await putOnce(store, retiringKey(e.folder), body)) marked.add(e.folder);
    });
    // then read again what references them: a claim, promotion or alias that landed before the mark wins
    const now = ctx.deps.clock.now();
    const claimed = await claimedFolders(store, scopes, now);
    const pointedNow = await pointedFolders(store, scopes);
    const aliasedNow = await aliasedFolders(ctx, store, scopes);
    const racing: { folder: string; why: string }[] = [];
    await mapLimit(doomed, 8, async (e) => {
      const why = claimed.has(e.folder)
        ? `is being ${claimed.get(e.folder)}`
        : pointedNow.has(e.folder)
          ? `was promoted to ${pointedNow.get(e.folder)!.join(', ')}`
          : aliasedNow.has(e.folder)
            ? `was given alias ${aliasedNow.get(e.folder)!.join(', ')}`
            : (await liveLease(store, e.folder, now))
              ? 'is being trained'
              : undefined;
      if (why) racing.push({ folder: e.folder, why });
    });
    if (racing.length > 0) {
      for (const r of racing) ctx.deps.logger.warn(`${r.folder} ${r.why} during rotation: kept`);
      const skip = new Set(racing.map((r) => r.folder));
      doomed = doomed.filter((e) => !skip.has(e.folder));
      await store.deleteMany(racing.filter((r) => marked.has(r.folder)).map((r) => retiringKey(r.folder)));
    }
    const doomedKeys = new Set(doomed.flatMap((e) => e.keys));
    const keys = plan.deleteKeys.filter((k) => doomedKeys.has(k));
    const r = await store.deleteMany(keys);
    deleted = r.deleted;
    requests = r.requests;
    // the folders are gone (manifests first): a late claim now finds no manifest and writes nothing
    await store.deleteMany(doomed.map((e) => retiringKey(e.folder)));
  }

  // step caches (`_steps/<key>/`): garbage once no kept model records them (src/core/steps.ts)
  const keptFolders = plan.entries.filter((e) => !doomed.includes(e)).map((e) => e.folder);
  const stepCaches = await rotateStepCaches(ctx, { keptFolders, dryRun });

  const bytes = doomed.reduce((n, e) => n + e.bytes, 0);
  const verb = dryRun ? 'would delete' : 'deleted';
  const headline =
    `rotate${dryRun ? ' (dry run)' : ''}: ${verb} ${doomed.length} model folders (${formatBytes(bytes)}), ` +
    `kept ${kept.length}; ${other} objects outside model folders left alone` +
    (dryRun
      ? `; to delete, run again with ${ctx.options.mention('dry-run', false)}`
      : `; ${deleted} objects in ${requests} delete requests`);
  const ordered = [...doomed, ...kept];
  const steps = stepCaches.line ? `\n${stepCaches.line}` : '';
  const text = `${planTable(ordered, false, Number.MAX_SAFE_INTEGER)}\n\n${headline}${steps}`;
  const summary = `### ${headline}\n\n${planTable(ordered, true, 500)}\n${steps ? `${steps}\n` : ''}`;
  return {
    outputs: {
      'dry-run': String(dryRun),
      'deleted-prefixes': JSON.stringify(doomed.map((e) => e.folder)),
      'delete-count': String(doomed.length),
      'kept-count': String(kept.length),
      'deleted-objects': String(deleted),
    },
    summary,
    text,
  };
}

export const rotateCommand: CommandDef = {
  name: 'rotate',
  summary:
    'Garbage-collect model folders that only reached development and whose branch is gone (dry run by default).',
  options: OPTIONS,
  outputs: outputsOf('dry-run', 'deleted-prefixes', 'delete-count', 'kept-count', 'deleted-objects'),
  run,
};
