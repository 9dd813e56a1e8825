import { MODEL_SOURCES_OPTION } from './model-context';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PipelineError, UserError } from '../core/errors';
import { MANIFEST_FILE } from '../core/manifest';
import type { OptionSpec } from '../core/options';
import type { ObjectStore } from '../core/ports';
import {
  ALIAS_OPTION,
  MODEL_NAME_OPTION,
  MODEL_PREFIX_OPTION,
  modelRefFrom,
  readManifest,
  sha256File,
} from './registry-context';
import type { CommandContext, CommandDef, CommandResult } from './types';

/** Shared with fetch-model and benchmark-report. */
export const DEST_OPTION: OptionSpec = {
  name: 'dest',
  description:
    'Local folder to write into (download, fetch-model: the model; benchmark-report: benchmark_results.xml). Default: `<version>-<sha7>` in the working directory.',
  type: 'string',
  env: ['MODEL_PIPELINE_DEST'],
};

const OPTIONS: readonly OptionSpec[] = [
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
];

/** Downloads beside the target, checks size and hash, and only then renames into place. */
export async function fetchVerified(
  store: ObjectStore,
  key: string,
  dest: string,
  expect: { size?: number; sha256?: string },
): Promise<void> {
  const part = `${dest}.part`;
  try {
    await store.downloadFile(key, part);
  } catch (err) {
    throw new PipelineError(`cannot download ${store.uri(key)}: ${(err as Error).message}`);
  }
  const size = (await fs.stat(part)).size;
  const sha = await sha256File(part);
  if (
    (expect.size !== undefined && size !== expect.size) ||
    (expect.sha256 !== undefined && sha !== expect.sha256)
  ) {
    await fs.rm(part, { force: true });
    throw new PipelineError(
      `${store.uri(key)} does not match its manifest (${size} bytes sha256:${sha.slice(0, 12)}…, expected ` +
        `${expect.size ?? '?'} bytes sha256:${expect.sha256?.slice(0, 12) ?? '?'}…); the download was removed`,
    );
  }
  await fs.rename(part, dest);
}

/** Moves a verified staging folder into dest: a rename when dest is absent or empty, else file by file. */
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
        await fs.mkdir(path.join(dest, r), { recursive: true });
        await walk(r);
      } else await fs.rename(path.join(stage, r), path.join(dest, r));
    }
  };
  await walk('');
}

function inside(root: string, rel: string, what: string): string {
  const full = path.resolve(root, rel);
  if (full !== root && !full.startsWith(root + path.sep))
    throw new PipelineError(`${what} "${rel}" would land outside ${root}`);
  return full;
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
  // every file is verified into a staging folder next to dest (same filesystem) and moved into place only
  // when all matched: a failure leaves nothing new in dest
  const parent = path.dirname(dest);
  await fs.mkdir(parent, { recursive: true });
  const stage = await fs.mkdtemp(path.join(parent, `.${path.basename(dest)}.download-`));
  try {
    for (const f of manifest.files) {
      const target = inside(stage, f.name, 'manifest file');
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fetchVerified(store, ref.folder + f.name, target, f);
    }
    await fs.writeFile(path.join(stage, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
    const inputsDir = path.join(stage, 'inputs');
    for (const i of inputs) {
      const target = inside(inputsDir, i.key, 'input key');
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fetchVerified(store, i.key, target, i);
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
  outputs: [
    { name: 'path', description: 'Folder the model was downloaded to.' },
    {
      name: 'model-prefix',
      description: 'Store folder of the model, `<version>-<sha7>/` under the store prefix.',
    },
    { name: 'model-uri', description: 'Full URI of the model folder (s3:// or file://).' },
    { name: 'files', description: 'Number of files downloaded.' },
  ],
  run,
};
