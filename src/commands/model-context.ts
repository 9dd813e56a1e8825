import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseModelConfig, type ModelConfig } from '../core/config';
import { PipelineError, UserError } from '../core/errors';
import { modelId, modelPrefix, normalizeSha, type ModelId } from '../core/identity';
import { isComplete, MANIFEST_FILE, MODEL_FILE, parseManifest } from '../core/manifest';
import {
  resolveModelOfCommit,
  servingCandidates,
  type ModelOfCommitQuery,
  type Resolution,
  type StoredModel,
} from '../core/resolution';
import { parseModelName } from '../core/identity';
import { defineOption } from '../core/options';
import type { ObjectStore } from '../core/ports';
import { globFiles, isGlob } from '../adapters/local/glob';
import type { CommandContext } from './types';
import { FIRST_COMMIT } from '../core/needs-model';

/** Shared by needs-model and build-ami: one name, one meaning. */
export const BASE_REF_OPTION = defineOption({
  name: 'base-ref',
  description:
    'Ref whose config version (needs-model) or AMI version file (build-ami) is compared. Default: the PR base branch, else the merge-base with the default branch (the previous commit when on it).',
  type: 'string',
  env: ['MODEL_PIPELINE_BASE_REF'],
});

/** Shared by rotate and prune-amis: destructive commands only plan unless told otherwise. */
export const DRY_RUN_OPTION = defineOption({
  name: 'dry-run',
  description: 'Only print the plan (what would be deleted or kept, and why); `false` deletes.',
  type: 'boolean',
  default: 'true',
  env: ['MODEL_PIPELINE_DRY_RUN'],
});

/** Paths whose content is part of what a model is built from (recorded as git object hashes at train time). */
export const MODEL_SOURCES_OPTION = defineOption({
  name: 'model-sources',
  description:
    'Paths (files or folders, comma or newline separated, relative to the working directory) whose content the model is built from, e.g. `train/,features.py`. Train records their git object hashes in the manifest; a stored model serves a commit only when they match (with the version and config content). Default: none, version and config content decide.',
  type: 'list',
  env: ['MODEL_PIPELINE_MODEL_SOURCES'],
});

export const FORCE_OPTION = defineOption({
  name: 'force',
  description:
    'Build even when the version did not change; still never twice for one model `<version>-<sha7>` or one AMI version.',
  type: 'boolean',
  default: 'false',
  env: ['MODEL_PIPELINE_FORCE'],
});

/**
 * Default base: the PR's base branch, else where HEAD left the default branch; on the default branch itself,
 * the commit before. Undefined for a first commit, where everything is new.
 */
export async function resolveBaseRef(ctx: CommandContext): Promise<string | undefined> {
  const given = ctx.options.string('base-ref');
  const git = ctx.deps.git;
  if (given) {
    await git.revParse(given);
    return given;
  }
  const [target, head] = await Promise.all([
    ctx.deps.ci.baseBranch ? `origin/${ctx.deps.ci.baseBranch}` : git.defaultBranch(),
    git.revParse('HEAD'),
  ]);
  const base = target ? await git.mergeBase('HEAD', target) : head;
  if (base !== head) return base;
  if (await git.hasCommit('HEAD~1')) return 'HEAD~1';
  // a shallow clone's oldest commit looks like a first commit: calling everything new would rebuild it all
  if (await git.isShallow?.()) {
    throw new UserError(
      'cannot compare with the previous commit: the checkout is shallow. In GitHub use actions/checkout ' +
        'with fetch-depth: 0, in CircleCI a full checkout; or set base-ref',
    );
  }
  return undefined;
}

/** How a ref from resolveBaseRef reads in messages: a merge-base sha as `main (merge-base abc1234)`. */
export async function baseRefLabel(ctx: CommandContext, ref: string | undefined): Promise<string> {
  if (ref === undefined) return FIRST_COMMIT;
  if (ctx.options.string('base-ref') || !/^[0-9a-f]{40}$/.test(ref)) return ref;
  const target = ctx.deps.ci.baseBranch
    ? `origin/${ctx.deps.ci.baseBranch}`
    : await ctx.deps.git.defaultBranch();
  return target ? `${target} (merge-base ${ref.slice(0, 7)})` : ref.slice(0, 7);
}

/** One model of the repo as this run sees it: its config, identity and folder in the store. */
export interface ModelTarget {
  config: ModelConfig;
  /** Sub-folder in the store for multi-model repos; undefined for a single model without a name. */
  modelName?: string;
  id: ModelId;
  /** Store key prefix of the model folder, ending in '/'. */
  prefix: string;
}

export async function readConfigFile(
  cwd: string,
  relPath: string,
  /** How this run's user names the config-path option (`--config-path`, the config-path input). */
  option = 'config-path',
): Promise<ModelConfig> {
  let text: string;
  try {
    text = await fs.readFile(path.resolve(cwd, relPath), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`config file ${relPath} not found (in ${cwd}); set ${option}`);
    if (code === 'EISDIR') throw new UserError(`${option} ${relPath} is a folder, not a TOML file`);
    throw new UserError(`cannot read config file ${relPath}: ${(err as Error).message}`);
  }
  return parseModelConfig(text, relPath);
}

/** The commit being built: the sha option, then the CI's variables, then git HEAD. */
export async function resolveSha(ctx: CommandContext): Promise<string> {
  const given = ctx.options.string('sha') || ctx.deps.ci.sha;
  if (given) return normalizeSha(given);
  return ctx.deps.git.revParse('HEAD');
}

/** Config paths selected by config-path: one file, or every match of a glob (at least one). */
export async function configPaths(ctx: CommandContext): Promise<{ paths: string[]; glob: boolean }> {
  const pattern = ctx.options.require('config-path');
  if (!isGlob(pattern)) return { paths: [pattern], glob: false };
  const paths = await globFiles(ctx.deps.cwd, pattern);
  if (paths.length === 0) throw new UserError(`config-path ${pattern} matches no file in ${ctx.deps.cwd}`);
  return { paths, glob: true };
}

export async function loadTargets(ctx: CommandContext): Promise<{ targets: ModelTarget[]; glob: boolean }> {
  const { paths, glob } = await configPaths(ctx);
  const sha = await resolveSha(ctx);
  const root = ctx.options.string('store-prefix');
  const targets: ModelTarget[] = [];
  const seen = new Map<string, string>();
  for (const p of paths) {
    const config = await readConfigFile(ctx.deps.cwd, p, ctx.options.mention('config-path'));
    // a glob match at the repo root has no folder to be named after ('.' is no store folder)
    const folder = path.posix.basename(path.posix.dirname(p));
    const modelName = config.name ?? (glob && folder !== '.' ? folder : undefined);
    const key = modelName ?? '';
    if (seen.has(key)) {
      throw new UserError(
        `${p} and ${seen.get(key)} would share the store folder "${key}": give each a distinct name`,
      );
    }
    seen.set(key, p);
    const id = modelId(config.version, sha);
    targets.push({ config, modelName, id, prefix: modelPrefix(root, id, modelName) });
  }
  return { targets, glob };
}

/** Git object hashes of the model-sources paths at a commit; undefined when the option names none. */
export async function sourceHashes(
  ctx: CommandContext,
  sha: string,
): Promise<Record<string, string> | undefined> {
  const paths = ctx.options
    .list('model-sources')
    .map((p) => p.trim().replace(/^\.\//, ''))
    .filter(Boolean);
  if (paths.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const p of paths) {
    if (p.split('/').includes('..') || p.startsWith('/'))
      throw new UserError(
        `model-sources path "${p}" must be relative to the working directory, without ".."`,
      );
    const key = p.replace(/\/+$/, '') || '.';
    const hash = await ctx.deps.git.objectHash(sha, key);
    if (!hash)
      throw new UserError(
        `model-sources path ${p} does not exist at commit ${sha.slice(0, 7)} (check model-sources)`,
      );
    out[key] = hash;
  }
  return out;
}

/** The scope (key prefix ending in '/', or '') a model folder sits in. */
function scopeOfFolder(folder: string): string {
  const trimmed = folder.replace(/\/$/, '');
  const cut = trimmed.lastIndexOf('/');
  return cut >= 0 ? trimmed.slice(0, cut + 1) : '';
}

/** Every folder of exactly `version` in the scope (one listing of `<scope><version>-`), with its manifest facts. */
export async function storedModelsOfVersion(
  store: ObjectStore,
  scope: string,
  version: string,
): Promise<StoredModel[]> {
  const byFolder = new Map<string, { names: Set<string>; manifestAt?: Date; newest: number }>();
  for await (const o of store.list(`${scope}${version}-`)) {
    const rest = o.key.slice(scope.length);
    const cut = rest.indexOf('/');
    if (cut < 0) continue;
    const name = rest.slice(0, cut);
    // the exact-prefix guarantee: 1.2.1-… lists 1.2.1-rc.1-… too, the parsed version must be equal
    if (parseModelName(name)?.version !== version || parseModelName(name)?.name !== name) continue;
    const folder = scope + name + '/';
    let f = byFolder.get(folder);
    if (!f) byFolder.set(folder, (f = { names: new Set(), newest: 0 }));
    const file = rest.slice(cut + 1);
    f.names.add(file);
    f.newest = Math.max(f.newest, o.lastModified.getTime());
    if (file === MANIFEST_FILE) f.manifestAt = o.lastModified;
  }
  const out: StoredModel[] = [];
  for (const [folder, f] of byFolder) {
    const id = parseModelName(folder.slice(scope.length))!;
    const complete = f.names.has(MODEL_FILE) && f.names.has(MANIFEST_FILE);
    let manifest: StoredModel['manifest'];
    if (complete) {
      const got = await store.get(folder + MANIFEST_FILE);
      try {
        const m = got
          ? parseManifest(got.body.toString('utf8'), store.uri(folder + MANIFEST_FILE))
          : undefined;
        if (m)
          manifest = {
            configSha256: m.config?.sha256,
            sources: m.sources,
            commit: m.git?.sha ?? m.model.sha,
          };
      } catch {
        manifest = undefined; // a damaged manifest serves nothing; the integrity gates report it
      }
    }
    out.push({ folder, id, complete, manifest, created: f.manifestAt ?? new Date(f.newest) });
  }
  return out;
}

export interface TargetResolution {
  resolution: Resolution;
  /** The query the rule answered: what this commit's model is built from. */
  query: ModelOfCommitQuery;
}

/** The resolution rule for one target at commit `sha`: which stored folder is the model of this commit. */
export async function resolveTarget(
  ctx: CommandContext,
  target: ModelTarget,
  sha?: string,
): Promise<TargetResolution> {
  const store = ctx.deps.store();
  const commit = sha ?? (await resolveSha(ctx));
  const full = /^[0-9a-f]{40}$/.test(commit)
    ? commit
    : await ctx.deps.git.revParse(commit).catch(() => commit);
  const query: ModelOfCommitQuery = {
    inputs: {
      version: target.id.version,
      configSha256: target.config.hash,
      sources: await sourceHashes(ctx, full),
    },
    sha: full,
    ownFolder: target.prefix,
  };
  const stored = await storedModelsOfVersion(store, scopeOfFolder(target.prefix), target.id.version);
  // git is asked only about folders that serve: a handful at most
  for (const m of servingCandidates(query, stored)) {
    const c = m.manifest?.commit;
    m.relation = c && (await ctx.deps.git.isAncestor(c, full).catch(() => false)) ? 'ancestor' : 'other';
  }
  return { resolution: resolveModelOfCommit(query, stored), query };
}

/** The single target of config-path (a glob must name one model with model-name). */
export async function singleTarget(ctx: CommandContext): Promise<ModelTarget> {
  const { targets } = await loadTargets(ctx);
  const name = ctx.options.string('model-name');
  const chosen = name ? targets.filter((t) => (t.modelName ?? '') === name) : targets;
  if (chosen.length !== 1)
    throw new UserError(
      chosen.length === 0
        ? `config-path selects no model named "${name}" (models: ${targets.map((t) => t.modelName ?? '(unnamed)').join(', ')})`
        : `config-path selects ${chosen.length} models: name one with model-name or model-prefix`,
    );
  return chosen[0];
}

/**
 * The folder that is the model of this commit, for commands that read a stored model (promote, fetch-model,
 * describe, download, benchmark-report): a PipelineError saying what to do when none serves.
 */
export async function modelOfCommit(
  ctx: CommandContext,
  target?: ModelTarget,
): Promise<{ folder: string; resolution: Resolution }> {
  const t = target ?? (await singleTarget(ctx));
  const { resolution } = await resolveTarget(ctx, t);
  if (resolution.found) {
    if (resolution.rule !== 'this-commit')
      ctx.deps.logger.info(
        `the model of this commit is ${resolution.folder} (${resolution.rule}: ${resolution.reason})`,
      );
    return { folder: resolution.folder, resolution };
  }
  const store = ctx.deps.store();
  throw new PipelineError(
    `no model serves this commit: ${store.uri(resolution.folder)} ${resolution.partial ? 'is incomplete (its training did not finish)' : 'does not exist'} and ${resolution.reason}. Train this commit's model first (needs-model, then train).`,
  );
}

export interface FolderState {
  complete: boolean;
  /** Something is there, but not a complete model. */
  partial: boolean;
}

/** Exact folder check: listing `<prefix>` with its trailing '/' so 1.2.1-… never matches 1.2.10-…. */
export async function folderState(store: ObjectStore, prefix: string): Promise<FolderState> {
  const folder = prefix.endsWith('/') ? prefix : prefix + '/';
  const names: string[] = [];
  for await (const o of store.list(folder)) {
    names.push(o.key.slice(folder.length));
    if (names.length > 10_000) break;
  }
  const complete = isComplete(names);
  return { complete, partial: !complete && names.length > 0 };
}

export { MANIFEST_FILE };
