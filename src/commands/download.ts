import { MODEL_SOURCES_OPTION } from './model-context';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PipelineError, UserError } from '../core/errors';
import { UnsafeArchiveError, unsafeName } from '../core/archive';
import { MANIFEST_FILE, MODEL_FILE } from '../core/manifest';
import { defineOption, defineOptions } from '../core/options';
import type { ObjectStore } from '../core/ports';
import {
  ALIAS_OPTION,
  MODEL_NAME_OPTION,
  MODEL_PREFIX_OPTION,
  modelRefFrom,
  readManifest,
  sha256File,
} from './registry-context';
import { ENVIRONMENT_OPTION, REPO_OPTIONS, STORE_OPTIONS } from './common-options';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';

/** Shared with fetch-model and benchmark-report. */
export const DEST_OPTION = defineOption({
  name: 'dest',
  description:
    'Local folder to write into (download, fetch-model: the model; benchmark-report: benchmark_results.xml). Default: `<version>-<sha7>` in the working directory.',
  type: 'string',
  env: ['MODEL_PIPELINE_DEST'],
});

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list)
  ...STORE_OPTIONS,
  ...REPO_OPTIONS,
  ENVIRONMENT_OPTION,
  MODEL_PREFIX_OPTION,
  ALIAS_OPTION,
  MODEL_NAME_OPTION,
  DEST_OPTION,
  {
    name: 'with-inputs',
    description:
      'Also download the inputs the manifest references (data keys in this store) into `<dest>/inputs/`.',
    type: 'boolean',
    default: 'false',
    env: ['MODEL_PIPELINE_WITH_INPUTS'],
  },
  MODEL_SOURCES_OPTION,
]);

/**
 * Downloads into a folder of its own beside the target (made here, so no name in it can be a planted link),
 * checks size and hash (and whatever `vet` checks), and only then renames into place: a rename replaces a
 * link at the target, it never writes through it.
 */
export async function fetchVerified(
  store: ObjectStore,
  key: string,
  dest: string,
  expect: { size?: number; sha256?: string },
  vet?: (file: string) => Promise<void>,
): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(path.dirname(dest), '.download-'));
  const part = path.join(tmp, 'part');
  try {
    let got: { size: number; sha256?: string };
    try {
      // hashed by the store as the bytes arrive (where it can), not read again afterwards
      got = await store.downloadFile(key, part, { sha256: true });
    } catch (err) {
      throw new PipelineError(`cannot download ${store.uri(key)}: ${(err as Error).message}`);
    }
    const size = (await fs.stat(part)).size;
    const sha = got.sha256 ?? (await sha256File(part));
    if (
      (expect.size !== undefined && size !== expect.size) ||
      (expect.sha256 !== undefined && sha !== expect.sha256)
    )
      throw new PipelineError(
        `${store.uri(key)} does not match its manifest (${size} bytes sha256:${sha.slice(0, 12)}…, expected ` +
          `${expect.size ?? '?'} bytes sha256:${expect.sha256?.slice(0, 12) ?? '?'}…); the download was removed`,
      );
    await vet?.(part);
    await fs.chmod(part, 0o644);
    await fs.rename(part, dest);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Moves a verified staging folder into dest: a rename when dest is absent or empty, else file by file, making
 * folders with ensureDirs (a link planted in dest is refused, never written through; a rename replaces a link).
 */
async function moveInto(stage: string, dest: string): Promise<void> {
  const existing = await fs.readdir(dest).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    if (err.code === 'ENOTDIR') throw new UserError(`dest ${dest} is a file, not a folder`);
    throw err;
  });
  if (existing === undefined || existing.length === 0) {
    if (existing) await fs.rmdir(dest);
    await fs.rename(stage, dest);
    return;
  }
  const walk = async (rel: string): Promise<void> => {
    for (const e of await fs.readdir(path.join(stage, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) {
        await ensureDirs(dest, `${r.split(path.sep).join('/')}/`);
        await walk(r);
      } else await fs.rename(path.join(stage, r), path.join(dest, r));
    }
  };
  await walk('');
}

/** root/rel, refused when rel is not a plain relative name. */
function inside(root: string, rel: string, what: string): string {
  const bad = unsafeName(rel);
  if (bad)
    throw new PipelineError(`${what} ${JSON.stringify(rel)} is refused (${bad}); nothing was downloaded`);
  return path.join(root, ...rel.split('/'));
}

/** Creates the folders of rel under root one by one, refusing any that exists as a link or a file. */
async function ensureDirs(root: string, rel: string): Promise<void> {
  let cur = root;
  for (const part of rel.split('/').slice(0, -1)) {
    cur = path.join(cur, part);
    try {
      await fs.mkdir(cur);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!(await fs.lstat(cur)).isDirectory())
        throw new PipelineError(`${cur} exists and is not a folder (a link?); refusing to write through it`);
    }
  }
}

/** A model.zip fetch-model would refuse to unpack is refused here too, with the same reasons. */
async function vetArchive(ctx: CommandContext, uri: string, file: string): Promise<void> {
  try {
    await ctx.deps.archives.inspect(file);
  } catch (err) {
    if (!(err instanceof UnsafeArchiveError)) {
      ctx.deps.logger.warn(`${uri} is not a zip archive fetch-model could unpack: ${(err as Error).message}`);
      return;
    }
    throw new PipelineError(`${uri} is not safe to unpack, it was not downloaded: ${err.message}`);
  }
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const store = ctx.deps.store();
  const ref = await modelRefFrom(ctx, { alias: true, environment: true, config: true });
  const manifest = await readManifest(store, ref);
  const dest = path.resolve(ctx.deps.cwd, ctx.options.string('dest') || ref.id.name);
  const base = store.uri('');
  const inputs: { key: string; sha256?: string; size?: number }[] = [];
  if (ctx.options.bool('with-inputs')) {
    for (const i of manifest.inputs ?? []) {
      let key = i.key;
      if (key.startsWith(base)) key = key.slice(base.length);
      else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(key))
        throw new UserError(
          `input ${i.key} is not in this store (${base}); download it separately or drop with-inputs`,
        );
      inputs.push({ ...i, key: key.replace(/^\/+/, '') });
    }
  }
  // every name checked before anything is written
  const seen = new Set<string>();
  for (const f of manifest.files) {
    inside(dest, f.name, 'manifest file');
    if (seen.has(f.name) || f.name === MANIFEST_FILE)
      throw new PipelineError(
        `manifest file ${JSON.stringify(f.name)} is listed twice; nothing was downloaded`,
      );
    seen.add(f.name);
  }
  for (const i of inputs) inside(path.join(dest, 'inputs'), i.key, 'input key');
  const destStat = await fs.lstat(dest).catch(() => undefined);
  if (destStat && !destStat.isDirectory()) throw new UserError(`dest ${dest} is not a folder`);
  // every file is verified into a staging folder next to dest (same filesystem, made here so nothing in it is
  // a planted link) and moved into place only when all matched: a failure leaves nothing new in dest
  const parent = path.dirname(dest);
  await fs.mkdir(parent, { recursive: true });
  const stage = await fs.mkdtemp(path.join(parent, `.${path.basename(dest)}.download-`));
  try {
    // model.zip first: an archive that is unsafe to unpack stops the download before anything else
    const files = [...manifest.files].sort(
      (a, b) => Number(b.name === MODEL_FILE) - Number(a.name === MODEL_FILE),
    );
    for (const f of files) {
      await ensureDirs(stage, f.name);
      await fetchVerified(
        store,
        ref.folder + f.name,
        inside(stage, f.name, 'manifest file'),
        f,
        f.name === MODEL_FILE ? (file) => vetArchive(ctx, store.uri(ref.folder + f.name), file) : undefined,
      );
    }
    await fs.writeFile(path.join(stage, MANIFEST_FILE), JSON.stringify(manifest, null, 2), {
      flag: 'wx',
      mode: 0o644,
    });
    const inputsDir = path.join(stage, 'inputs');
    for (const i of inputs) {
      await ensureDirs(stage, `inputs/${i.key}`);
      await fetchVerified(store, i.key, inside(inputsDir, i.key, 'input key'), i);
      if (!i.sha256)
        ctx.deps.logger.warn(`input ${i.key} has no hash in the manifest: downloaded unverified`);
    }
    await moveInto(stage, dest);
  } finally {
    await fs.rm(stage, { recursive: true, force: true });
  }
  const count = manifest.files.length + inputs.length;
  return {
    outputs: {
      path: dest,
      'model-prefix': ref.folder,
      'model-uri': store.uri(ref.folder),
      files: String(count),
    },
    text: `downloaded ${ref.folder} to ${dest}: ${manifest.files.length} files${inputs.length ? ` and ${inputs.length} inputs` : ''}, hashes verified`,
  };
}

export const downloadCommand: CommandDef = {
  name: 'download',
  summary:
    'Download a model (by prefix, alias or environment) and optionally its inputs, verifying every hash.',
  options: OPTIONS,
  outputs: outputsOf('path', 'model-prefix', 'model-uri', 'files'),
  run,
};
