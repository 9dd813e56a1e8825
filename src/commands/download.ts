import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PipelineError, UserError } from '../core/errors';
import { MANIFEST_FILE } from '../core/manifest';
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
import { ENVIRONMENT_OPTION } from './common-options';
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
]);

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

function inside(root: string, rel: string, what: string): string {
  const full = path.resolve(root, rel);
  if (full !== root && !full.startsWith(root + path.sep))
    throw new PipelineError(`${what} "${rel}" would land outside ${root}`);
  return full;
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const store = ctx.deps.store();
  const ref = await modelRefFrom(ctx, { alias: true, environment: true });
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
  await fs.mkdir(dest, { recursive: true });
  for (const f of manifest.files) {
    const target = inside(dest, f.name, 'manifest file');
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fetchVerified(store, ref.folder + f.name, target, f);
  }
  await fs.writeFile(path.join(dest, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
  const inputsDir = path.join(dest, 'inputs');
  for (const i of inputs) {
    const target = inside(inputsDir, i.key, 'input key');
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fetchVerified(store, i.key, target, i);
    if (!i.sha256) ctx.deps.logger.warn(`input ${i.key} has no hash in the manifest: downloaded unverified`);
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
