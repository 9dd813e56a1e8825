import * as z from './schema';
import type { StoredObject } from './ports';

/** Files every model folder holds. The manifest is written last: a folder without one is not a model. */
export const MODEL_FILE = 'model.zip';
export const MANIFEST_FILE = 'manifest.json';

/** What the store reported for a file when it was uploaded (see StoredObject in ports.ts). */
const storedEntry = z.object({
  etag: z.optional(z.string()),
  versionId: z.optional(z.string()),
  checksum: z.optional(
    z.object({
      algorithm: z.string().check(z.minLength(1)),
      type: z.optional(z.enum(['FULL_OBJECT', 'COMPOSITE'])),
      value: z.string().check(z.minLength(1)),
      partSize: z.optional(z.int().check(z.positive())),
    }),
  ),
});

const fileEntry = z.object({
  /** Name relative to the model folder. */
  name: z.string().check(z.minLength(1)),
  size: z.int().check(z.nonnegative()),
  sha256: z.string().check(z.regex(/^[0-9a-f]{64}$/)),
  /**
   * Absent in folders written before checksums were recorded: those are checked by hashing their bytes.
   */
  stored: z.optional(storedEntry),
});

export const manifestSchema = z.looseObject({
  schemaVersion: z.literal(1),
  model: z.object({ name: z.string(), version: z.string(), sha: z.string() }),
  files: z.array(fileEntry).check(z.minLength(1)),
  config: z.optional(z.object({ path: z.string(), sha256: z.string() })),
  inputs: z.optional(
    z.array(z.object({ key: z.string(), sha256: z.optional(z.string()), size: z.optional(z.number()) })),
  ),
  git: z.optional(
    z.object({ sha: z.string(), branch: z.optional(z.string()), repository: z.optional(z.string()) }),
  ),
  build: z.optional(
    z.object({
      backend: z.string(),
      ami: z.optional(z.string()),
      instanceType: z.optional(z.string()),
      instanceId: z.optional(z.string()),
      startedAt: z.string(),
      finishedAt: z.string(),
      runUrl: z.optional(z.string()),
      actor: z.optional(z.string()),
    }),
  ),
  /** `model-sources` path -> git object hash at the commit: part of what the model was built from. */
  sources: z.optional(z.record(z.string(), z.string())),
  /** The training run's metrics (the data every comparison reads), copied from its metrics file. */
  metrics: z.optional(z.object({ file: z.string(), values: z.record(z.string(), z.number()) })),
  /**
   * The verdict, written once at train time. `file` names the metrics file (JSON), `report` the JUnit
   * report made from it. Manifests written before `report` existed may name the XML report in `file`.
   */
  benchmark: z.optional(
    z.object({ passed: z.boolean(), file: z.optional(z.string()), report: z.optional(z.string()) }),
  ),
  /** The config's steps as this model was built: key, cache hit, duration (src/core/steps.ts). */
  steps: z.optional(
    z.array(
      z.object({
        name: z.string(),
        key: z.string(),
        status: z.enum(['ran', 'cached']),
        cacheHit: z.boolean(),
        seconds: z.number(),
        outputs: z.array(z.string()),
      }),
    ),
  ),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestFile = z.infer<typeof fileEntry>;

/** The manifest's record of what the store reported at upload; only the fields that identify content. */
export function storedRecord(o: StoredObject): NonNullable<ManifestFile['stored']> {
  return {
    ...(o.etag !== undefined ? { etag: o.etag } : {}),
    ...(o.versionId !== undefined ? { versionId: o.versionId } : {}),
    ...(o.checksum ? { checksum: { ...o.checksum } } : {}),
  };
}

export function parseManifest(text: string, where: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`${where}: manifest is not valid JSON`);
  }
  const result = manifestSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new Error(`${where}: manifest field "${issue.path.join('.')}" ${issue.message}`);
  }
  return result.data;
}

/** Complete = the model file and the manifest are both there (by name, relative to the model folder). */
export function isComplete(namesInFolder: Iterable<string>): boolean {
  const names = new Set(namesInFolder);
  return names.has(MODEL_FILE) && names.has(MANIFEST_FILE);
}

/** Differences between what the manifest promises and what the folder holds (size only; hashes need bytes). */
export function sizeMismatches(manifest: Manifest, actual: Map<string, number>): string[] {
  const problems: string[] = [];
  for (const f of manifest.files) {
    const size = actual.get(f.name);
    if (size === undefined) problems.push(`${f.name} is listed in the manifest but missing`);
    else if (size !== f.size) problems.push(`${f.name} is ${size} bytes, the manifest says ${f.size}`);
  }
  return problems;
}
