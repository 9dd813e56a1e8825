import * as z from './schema';
import { UserError } from './errors';
import { joinKey, parseModelName, type ModelId } from './identity';

/** Environments in promotion order: a model reaches each one only after the one before. */
export const ENVIRONMENTS = ['development', 'staging', 'production'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export function isEnvironment(name: string): name is Environment {
  return (ENVIRONMENTS as readonly string[]).includes(name);
}

export function parseEnvironment(name: string | undefined, setting = 'environment'): Environment {
  if (!name)
    throw new UserError(`missing required setting "${setting}" (development, staging or production)`);
  if (!isEnvironment(name))
    throw new UserError(`${setting} must be one of ${ENVIRONMENTS.join(', ')}; got "${name}"`);
  return name;
}

/** Folder beside the model folders that holds the registry's own state; never a model, never rotated. */
export const REGISTRY_DIR = '_registry';

/** A model folder named by the user, resolved against the store layout. */
export interface ModelRef {
  /** Key prefix of the model folder, ending in '/'. */
  folder: string;
  /** Key prefix the model folders of this model live in ('' or ending in '/'); the registry sits here. */
  scope: string;
  id: ModelId;
}

/**
 * Accepts what users paste: the `model-prefix` output of needs-model, the folder name alone, a URI of this
 * store, with or without the trailing '/'. A value that does not already start with the store prefix is
 * taken as relative to it.
 */
export function resolveModelRef(given: string, root: string, storeUri: string): ModelRef {
  let key = given.trim();
  if (key === '') throw new UserError('model-prefix is empty; give a model folder such as 1.2.0-abc1234/');
  if (storeUri && key.startsWith(storeUri)) key = key.slice(storeUri.length);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(key)) {
    throw new UserError(`model-prefix ${given} is not in this store (${storeUri || 'no uri'})`);
  }
  key = joinKey(key);
  const rootKey = joinKey(root);
  if (rootKey && key !== rootKey && !key.startsWith(rootKey + '/')) key = joinKey(rootKey, key);
  const cut = key.lastIndexOf('/');
  const name = key.slice(cut + 1);
  const id = parseModelName(name);
  if (!id) {
    throw new UserError(
      `model-prefix ${given} does not name a model folder: the last part must be <semver>-<sha7>, e.g. 1.2.0-abc1234/`,
    );
  }
  const scope = cut >= 0 ? key.slice(0, cut + 1) : '';
  return { folder: key + '/', scope, id };
}

/** Keys of the registry state of one scope (see docs/store-layout.md). */
export const registryKeys = {
  pointer: (scope: string, env: Environment): string =>
    joinKey(scope, REGISTRY_DIR, 'environments', `${env}.json`),
  historyDir: (scope: string, env: Environment): string => joinKey(scope, REGISTRY_DIR, 'history', env) + '/',
  history: (scope: string, env: Environment, seq: number): string =>
    joinKey(scope, REGISTRY_DIR, 'history', env, `${String(seq).padStart(10, '0')}.json`),
  alias: (scope: string, name: string): string => joinKey(scope, REGISTRY_DIR, 'aliases', `${name}.json`),
  aliasDir: (scope: string): string => joinKey(scope, REGISTRY_DIR, 'aliases') + '/',
  marker: (folder: string, env: Environment): string => joinKey(folder, env),
  deploymentDir: (scope: string, env: Environment): string =>
    joinKey(scope, REGISTRY_DIR, 'deployments', env) + '/',
  /** `<at, compact ISO>-<id>.json`: keys sort by time, and two fetches in one second never collide. */
  deployment: (scope: string, env: Environment, at: Date, id: string): string =>
    joinKey(
      scope,
      REGISTRY_DIR,
      'deployments',
      env,
      `${at
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.(\d{3})Z$/, '$1Z')}-${id}.json`,
    ),
};

const ALIAS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function checkAliasName(name: string): string {
  const v = name.trim();
  if (!ALIAS.test(v))
    throw new UserError(`alias "${name}" may hold only letters, digits, ".", "_" and "-" (at most 100)`);
  return v;
}

export const promotionRecordSchema = z.looseObject({
  schemaVersion: z.literal(1),
  seq: z.int().check(z.positive()),
  action: z.enum(['promote', 'demote']),
  environment: z.enum(ENVIRONMENTS),
  prefix: z.string(),
  previousPrefix: z.optional(z.string()),
  /** The environment whose marker allowed this step (development for staging, staging for production). */
  fromEnvironment: z.optional(z.enum(ENVIRONMENTS)),
  at: z.string(),
  actor: z.optional(z.string()),
  runUrl: z.optional(z.string()),
  reason: z.optional(z.string()),
  /** Set when the order or benchmark gate was skipped on request: what was skipped. */
  override: z.optional(z.array(z.string())),
});
export type PromotionRecord = z.infer<typeof promotionRecordSchema>;

/** The environment pointer: which prefix an environment runs now; replaced only by compare-and-swap. */
export const pointerSchema = z.looseObject({
  schemaVersion: z.literal(1),
  environment: z.enum(ENVIRONMENTS),
  prefix: z.string(),
  seq: z.int().check(z.positive()),
  record: promotionRecordSchema,
});
export type EnvironmentPointer = z.infer<typeof pointerSchema>;

/** One verified fetch of a model for an environment (fetch-model); append-only, never rewritten. */
export const deploymentRecordSchema = z.looseObject({
  schemaVersion: z.literal(1),
  environment: z.enum(ENVIRONMENTS),
  prefix: z.string(),
  version: z.string(),
  /** sha256 of the model.zip that was verified and unpacked. */
  modelSha256: z.string(),
  /** The pointer sequence number the prefix came from (staging, production). */
  pointerSeq: z.optional(z.int().check(z.positive())),
  at: z.string(),
  actor: z.optional(z.string()),
  runUrl: z.optional(z.string()),
  gitSha: z.optional(z.string()),
  /** Set when a model with a failed benchmark was fetched on request. */
  override: z.optional(z.array(z.string())),
});
export type DeploymentRecord = z.infer<typeof deploymentRecordSchema>;

export const aliasSchema = z.looseObject({
  schemaVersion: z.literal(1),
  alias: z.string(),
  prefix: z.string(),
  at: z.string(),
  actor: z.optional(z.string()),
  reason: z.optional(z.string()),
});
export type AliasRecord = z.infer<typeof aliasSchema>;

export function parseJsonAs<T>(schema: z.ZodMiniType<T>, text: string, where: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`${where} is not valid JSON`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`${where}: field "${issue.path.join('.')}" ${issue.message}`);
  }
  return r.data;
}

/**
 * Order rule: staging needs a development marker, production a staging marker. An override lets the step
 * through but is named, so the record shows what was skipped.
 */
export function checkPromotionOrder(
  target: Environment,
  markers: ReadonlySet<string>,
  override: boolean,
): { ok: boolean; required?: Environment; problem?: string; overridden?: string } {
  const i = ENVIRONMENTS.indexOf(target);
  if (i === 0) return { ok: true };
  const required = ENVIRONMENTS[i - 1];
  if (markers.has(required)) return { ok: true, required };
  const problem = `${target} requires the model to be in ${required} first (no ${required} marker)`;
  if (override) return { ok: true, required, overridden: `order: ${problem}` };
  return { ok: false, required, problem };
}

/** Where an object sits in the layout: in a model folder of some scope, in a registry, or elsewhere. */
export type KeyPlace =
  | { kind: 'model'; scope: string; folder: string; id: ModelId; name: string }
  | { kind: 'registry'; scope: string }
  | { kind: 'other' };

/**
 * Model folders sit directly under the store prefix or one level below it (a model name). Everything else
 * (including odd names like `1.2-abc` or `v1.2.0-abc1234`) is 'other' and is never treated as a model.
 */
export function placeOf(key: string, root: string): KeyPlace {
  const rootKey = joinKey(root);
  const base = rootKey ? rootKey + '/' : '';
  if (!key.startsWith(base)) return { kind: 'other' };
  const parts = key.slice(base.length).split('/');
  if (parts.length >= 2 && parts[0] === REGISTRY_DIR) return { kind: 'registry', scope: base };
  if (parts.length >= 2) {
    const id = parseModelName(parts[0]);
    if (id && parts[0] === id.name) {
      const folder = base + parts[0] + '/';
      return { kind: 'model', scope: base, folder, id, name: parts.slice(1).join('/') };
    }
  }
  if (parts.length >= 3 && parts[0] !== '' && parseModelName(parts[0]) === undefined) {
    const scope = base + parts[0] + '/';
    if (parts[1] === REGISTRY_DIR) return { kind: 'registry', scope };
    const id = parseModelName(parts[1]);
    if (id && parts[1] === id.name) {
      return { kind: 'model', scope, folder: scope + parts[1] + '/', id, name: parts.slice(2).join('/') };
    }
  }
  return { kind: 'other' };
}

export interface FolderObject {
  /** Name relative to the folder. */
  name: string;
  key: string;
  size: number;
  lastModified: Date;
}

export interface ModelFolder {
  scope: string;
  folder: string;
  id: ModelId;
  objects: FolderObject[];
  /** Environments whose marker object the folder holds. */
  markers: Set<Environment>;
}

/** Groups a listing into model folders; objects outside model folders are returned apart. */
export function groupListing(
  objects: Iterable<{ key: string; size: number; lastModified: Date }>,
  root: string,
): { folders: Map<string, ModelFolder>; registry: string[]; other: string[] } {
  const folders = new Map<string, ModelFolder>();
  const registry: string[] = [];
  const other: string[] = [];
  for (const o of objects) {
    const place = placeOf(o.key, root);
    if (place.kind === 'registry') registry.push(o.key);
    else if (place.kind === 'other') other.push(o.key);
    else {
      let f = folders.get(place.folder);
      if (!f) {
        f = { scope: place.scope, folder: place.folder, id: place.id, objects: [], markers: new Set() };
        folders.set(place.folder, f);
      }
      f.objects.push({ name: place.name, key: o.key, size: o.size, lastModified: o.lastModified });
      if (isEnvironment(place.name)) f.markers.add(place.name);
    }
  }
  return { folders, registry, other };
}
