import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { extractMetrics, metricsFileNames, parseThresholds, type Thresholds } from '../core/benchmark';
import { PipelineError, PreconditionFailedError, UserError } from '../core/errors';
import { joinKey } from '../core/identity';
import { MANIFEST_FILE, parseManifest, type Manifest } from '../core/manifest';
import { defineOption } from '../core/options';
import type { Logger, ObjectInfo, ObjectStore, StoredObject } from '../core/ports';
import {
  aliasSchema,
  checkAliasName,
  parseEnvironment,
  parseJsonAs,
  pointerSchema,
  registryKeys,
  resolveModelRef,
  type Environment,
  type EnvironmentPointer,
  type ModelRef,
} from '../core/registry';
import { compareStored, fileMismatches, unsafeFileNames, type ActualFile } from '../core/gates';
import { modelOfCommit, readConfigFile } from './model-context';
import type { CommandContext } from './types';

/** Options shared by the registry commands; one object each, so every command declares them identically. */
export const MODEL_PREFIX_OPTION = defineOption({
  name: 'model-prefix',
  description:
    'Model folder in the store: `<version>-<sha7>/` (relative to `store-prefix`), the `model-prefix` output of needs-model, or its URI. Default (promote): the folder of `config-path` at `sha`.',
  type: 'string',
  env: ['MODEL_PIPELINE_MODEL_PREFIX'],
});
export const MODEL_NAME_OPTION = defineOption({
  name: 'model-name',
  description:
    'Model sub-folder under `store-prefix` in multi-model stores (where environments and aliases are looked up when no `model-prefix` is given).',
  type: 'string',
  env: ['MODEL_PIPELINE_MODEL_NAME'],
});
export const REASON_OPTION = defineOption({
  name: 'reason',
  description: 'Why: recorded in the promotion / alias record. Required with `override-order`.',
  type: 'string',
  env: ['MODEL_PIPELINE_REASON'],
});
export const ALIAS_OPTION = defineOption({
  name: 'alias',
  description: 'Alias name of a model folder (letters, digits, `.`, `_`, `-`).',
  type: 'string',
  env: ['MODEL_PIPELINE_ALIAS'],
});
export const DEEP_VERIFY_OPTION = defineOption({
  name: 'deep-verify',
  description:
    "Check the model's files by downloading and hashing them (sha256). Default: compare the checksum, ETag and version the store reports (S3 HeadObject, no bytes downloaded) with those the manifest recorded at upload; folders written before they were recorded are hashed anyway.",
  type: 'boolean',
  default: 'false',
  env: ['MODEL_PIPELINE_DEEP_VERIFY'],
});
export const OVERRIDE_ORDER_OPTION = defineOption({
  name: 'override-order',
  description:
    'Promote although the model skipped the previous environment (or demote to a model never in it); recorded with `reason`.',
  type: 'boolean',
  default: 'false',
  env: ['MODEL_PIPELINE_OVERRIDE_ORDER'],
});

export const THRESHOLDS_OPTION = defineOption({
  name: 'thresholds-file',
  description:
    'Benchmark thresholds: JSON or TOML file of per-metric limits, `metrics.<name>` with `better` higher|lower, `min` / `max` (absolute), `warn` / `fail` (how much worse than the current model of the environment is allowed). Used by the promote gate and the benchmark report.',
  type: 'string',
  env: ['MODEL_PIPELINE_THRESHOLDS_FILE'],
});
export const ALLOW_FAILED_BENCHMARK_OPTION = defineOption({
  name: 'allow-failed-benchmark',
  description:
    'Promote (or fetch) a model whose manifest says its benchmark failed; promote records it with `reason`.',
  type: 'boolean',
  default: 'false',
  env: ['MODEL_PIPELINE_ALLOW_FAILED_BENCHMARK'],
});

/** The thresholds file named by a setting, read relative to the working directory. */
export async function loadThresholds(
  cwd: string,
  file: string,
  setting = 'thresholds-file',
): Promise<Thresholds> {
  let text: string;
  try {
    text = await fs.readFile(path.resolve(cwd, file), 'utf8');
  } catch {
    throw new UserError(`thresholds file ${file} not found (in ${cwd}); set ${setting}`);
  }
  return parseThresholds(text, file);
}

/**
 * The metrics file (JSON data) stored in a model folder: the one the manifest names, else
 * benchmark_results.json, else metrics.json (train's default metrics-file); never the JUnit report.
 * Undefined when there is none.
 */
export async function storedMetrics(
  store: ObjectStore,
  folder: string,
  manifest?: Manifest,
): Promise<{ key: string; text: string } | undefined> {
  const m = manifest ?? (await manifestIfReadable(store, folder));
  for (const name of metricsFileNames(m)) {
    const got = await store.get(folder + name);
    if (got) return { key: folder + name, text: got.body.toString('utf8') };
  }
  return undefined;
}

async function manifestIfReadable(store: ObjectStore, folder: string): Promise<Manifest | undefined> {
  const got = await store.get(folder + MANIFEST_FILE);
  try {
    return got ? parseManifest(got.body.toString('utf8'), '') : undefined;
  } catch {
    return undefined; // a damaged manifest is reported by the integrity gate, not here
  }
}

/**
 * The metrics of a stored model for comparisons (benchmark gate, train's report against an environment):
 * as its manifest records them, else from its metrics file. Undefined when it has none.
 */
export async function recordedMetrics(
  store: ObjectStore,
  folder: string,
): Promise<{ where: string; metrics: Map<string, number> } | undefined> {
  const manifest = await manifestIfReadable(store, folder);
  if (manifest?.metrics)
    return {
      where: store.uri(folder + MANIFEST_FILE),
      metrics: new Map(Object.entries(manifest.metrics.values)),
    };
  const got = await storedMetrics(store, folder, manifest);
  if (!got) return undefined;
  try {
    return { where: store.uri(got.key), metrics: extractMetrics(JSON.parse(got.text)) };
  } catch {
    throw new PipelineError(
      `${store.uri(got.key)} (metrics of ${folder}) is not valid JSON; fix or remove it`,
    );
  }
}

export function storeRoot(ctx: CommandContext): string {
  return joinKey(ctx.options.string('store-prefix'));
}

/** The scope (key prefix of model folders) named by model-name, else the store prefix itself. */
export function scopeOf(ctx: CommandContext): string {
  const name = ctx.options.string('model-name');
  const key = joinKey(storeRoot(ctx), name ?? '');
  return key ? key + '/' : '';
}

/**
 * The registry scope of the model config-path names: model-name, else the config's `name` (train stores a
 * named model under it), else the store prefix. Used where no model-prefix names the folder.
 */
export async function configScope(ctx: CommandContext): Promise<string> {
  if (ctx.options.string('model-name')) return scopeOf(ctx);
  if (await configExists(ctx)) {
    const config = await readConfigFile(ctx.deps.cwd, ctx.options.string('config-path')!);
    if (config.name) return joinKey(storeRoot(ctx), config.name) + '/';
  }
  return scopeOf(ctx);
}

export function actorOf(ctx: CommandContext): string {
  return ctx.deps.ci.actor ?? ctx.deps.env.USER ?? 'unknown';
}

export async function listAll(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of store.list(prefix)) out.push(o);
  return out;
}

export async function readPointer(
  store: ObjectStore,
  scope: string,
  env: Environment,
): Promise<{ pointer?: EnvironmentPointer; etag?: string }> {
  const key = registryKeys.pointer(scope, env);
  const got = await store.get(key);
  if (!got) return {};
  try {
    return { pointer: parseJsonAs(pointerSchema, got.body.toString('utf8'), store.uri(key)), etag: got.etag };
  } catch (err) {
    throw new PipelineError(
      `${(err as Error).message}: the environment pointer is damaged; fix or remove it`,
    );
  }
}

export async function readAlias(store: ObjectStore, scope: string, name: string): Promise<string> {
  const key = registryKeys.alias(scope, checkAliasName(name));
  const got = await store.get(key);
  if (!got)
    throw new UserError(`alias "${name}" is not set (no ${store.uri(key)}); set it with the alias command`);
  try {
    return parseJsonAs(aliasSchema, got.body.toString('utf8'), store.uri(key)).prefix;
  } catch (err) {
    throw new PipelineError(`${(err as Error).message}: the alias record is damaged; set the alias again`);
  }
}

/** config-path names one existing file (not a glob): the commands that default to "this commit" can use it. */
async function configExists(ctx: CommandContext): Promise<boolean> {
  const p = ctx.options.string('config-path');
  if (!p || /[*?[{]/.test(p)) return false;
  return fs
    .access(path.resolve(ctx.deps.cwd, p))
    .then(() => true)
    .catch(() => false);
}

/**
 * The model a command works on: model-prefix, else alias, else the environment's current model
 * (when allowed), else the model of this commit by the resolution rule (when allowed; with `true` only when
 * config-path exists, with 'always' it must).
 */
export async function modelRefFrom(
  ctx: CommandContext,
  allow: { alias?: boolean; environment?: boolean; config?: boolean | 'always' },
): Promise<ModelRef> {
  const store = ctx.deps.store();
  const root = storeRoot(ctx);
  const given = ctx.options.string('model-prefix');
  if (given) return resolveModelRef(given, root, store.uri(''));
  const alias = allow.alias ? ctx.options.string('alias') : undefined;
  if (alias) return resolveModelRef(await readAlias(store, scopeOf(ctx), alias), '', '');
  const envName = allow.environment ? ctx.options.string('environment') : undefined;
  if (envName) {
    const env = parseEnvironment(envName);
    const { pointer } = await readPointer(store, scopeOf(ctx), env);
    if (!pointer)
      throw new PipelineError(
        `no model is in ${env} (no ${store.uri(registryKeys.pointer(scopeOf(ctx), env))})`,
      );
    return resolveModelRef(pointer.prefix, '', '');
  }
  if (allow.config && (allow.config === 'always' || (await configExists(ctx)))) {
    // the one resolution rule: the stored folder that is the model of this commit (docs/store-layout.md)
    const { folder } = await modelOfCommit(ctx);
    return resolveModelRef(folder, '', '');
  }
  const ways = [
    'model-prefix',
    allow.alias && 'alias',
    allow.environment && 'environment',
    allow.config && 'config-path (the model of this commit)',
  ].filter(Boolean);
  throw new UserError(`name the model with ${ways.join(' or ')}`);
}

/** Objects of a model folder; a UserError naming the folder when there are none. */
export async function listFolder(store: ObjectStore, ref: ModelRef): Promise<ObjectInfo[]> {
  const objects = await listAll(store, ref.folder);
  if (objects.length === 0)
    throw new UserError(
      `model folder ${store.uri(ref.folder)} does not exist in the store (check model-prefix)`,
    );
  return objects;
}

export async function readManifest(store: ObjectStore, ref: ModelRef): Promise<Manifest> {
  const key = ref.folder + MANIFEST_FILE;
  const got = await store.get(key);
  if (!got)
    throw new PipelineError(
      `${store.uri(ref.folder)} has no ${MANIFEST_FILE}: the model is incomplete (train writes the manifest last)`,
    );
  let manifest: Manifest;
  try {
    manifest = parseManifest(got.body.toString('utf8'), store.uri(key));
  } catch (err) {
    throw new PipelineError((err as Error).message);
  }
  const unsafe = unsafeFileNames(manifest);
  if (unsafe.length > 0)
    throw new PipelineError(`${store.uri(key)} names files outside the model folder: ${unsafe.join(', ')}`);
  return manifest;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const IN_MEMORY_LIMIT = 8 * 1024 * 1024;

/** sha256 of an object: small ones read whole, large ones streamed through a temporary file. */
export async function sha256Object(store: ObjectStore, key: string, size: number): Promise<string> {
  if (size <= IN_MEMORY_LIMIT) {
    const got = await store.get(key);
    if (!got) throw new PipelineError(`${store.uri(key)} disappeared while it was being verified`);
    return createHash('sha256').update(got.body).digest('hex');
  }
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'mp-verify-'));
  try {
    const file = path.join(dir, randomBytes(4).toString('hex'));
    await store.downloadFile(key, file);
    return await sha256File(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export interface VerifyOptions {
  /** Hash every file's bytes, whatever the manifest recorded. */
  deep?: boolean;
  logger?: Logger;
}

/**
 * Whether a model folder holds exactly the files its manifest lists, as problems (none: it does). Sizes come
 * from the listing first (cheap). Then each file the manifest recorded a store checksum for is compared with
 * what the store reports now (ObjectStore.stat: S3 HeadObject, no bytes); only files without a record, or
 * whose record the store can no longer confirm or refute (e.g. rewritten with another part size), and every
 * file with `deep`, are downloaded and hashed with sha256.
 */
export async function verifyModelFiles(
  store: ObjectStore,
  ref: ModelRef,
  manifest: Manifest,
  objects: ObjectInfo[],
  options: VerifyOptions = {},
): Promise<string[]> {
  const log = options.logger;
  const actual = new Map<string, ActualFile>();
  for (const o of objects) actual.set(o.key.slice(ref.folder.length), { size: o.size });
  const sizeProblems = fileMismatches(manifest, actual).filter((p) => !p.endsWith('was not hashed'));
  if (sizeProblems.length > 0) return sizeProblems;

  const recorded = options.deep ? [] : manifest.files.filter((f) => f.stored);
  const reported = await mapLimit(recorded, 8, (f) => store.stat(ref.folder + f.name));
  const problems: string[] = [];
  const toHash = new Set(manifest.files.map((f) => f.name));
  recorded.forEach((f, i) => {
    const v = compareStored(f.name, { ...(f.stored as StoredObject), size: f.size }, reported[i]);
    if (v.verdict === 'changed') problems.push(v.problem);
    else if (v.verdict === 'unknown') log?.info(`${v.why}: hashing its bytes to check it`);
    if (v.verdict !== 'unknown') toHash.delete(f.name);
  });
  if (problems.length > 0) return problems;
  const unrecorded = options.deep ? 0 : manifest.files.length - recorded.length;
  if (unrecorded > 0)
    log?.info(
      `${store.uri(ref.folder)}: the manifest records no store checksums for ${unrecorded} of ${manifest.files.length} files (written before they were recorded): downloading and hashing them`,
    );
  if (recorded.length > 0 && toHash.size === 0)
    log?.info(
      `${store.uri(ref.folder)}: all ${recorded.length} files match the checksums recorded at upload (nothing downloaded)`,
    );
  for (const f of manifest.files) {
    const a = actual.get(f.name)!;
    a.sha256 = toHash.has(f.name) ? await sha256Object(store, ref.folder + f.name, a.size) : f.sha256;
  }
  return fileMismatches(manifest, actual);
}

/** Create-only write that treats "already there" as done: for records that are the same on every retry. */
export async function putOnce(store: ObjectStore, key: string, body: string): Promise<boolean> {
  try {
    await store.put(key, body, { ifNoneMatch: true, contentType: 'application/json' });
    return true;
  } catch (err) {
    if (err instanceof PreconditionFailedError) return false;
    throw err;
  }
}

/** Runs fn over items with at most `limit` in flight, keeping order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
