import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseModelConfig, type ModelConfig } from '../core/config';
import { UserError } from '../core/errors';
import { modelId, modelPrefix, normalizeSha, type ModelId } from '../core/identity';
import { isComplete, MANIFEST_FILE } from '../core/manifest';
import { defineOption } from '../core/options';
import type { ObjectStore } from '../core/ports';
import { globFiles, isGlob } from '../adapters/local/glob';
import type { CommandContext } from './types';

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
  const target = ctx.deps.ci.baseBranch ? `origin/${ctx.deps.ci.baseBranch}` : await git.defaultBranch();
  const head = await git.revParse('HEAD');
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
  if (ref === undefined) return 'the first commit';
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
