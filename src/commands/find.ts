import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../core/errors';
import { MANIFEST_FILE, parseManifest } from '../core/manifest';
import { markdownTable } from '../core/markdown';
import { defineOptions } from '../core/options';
import { placeOf } from '../core/registry';
import { listAll, mapLimit, MODEL_NAME_OPTION, scopeOf, storeRoot } from './registry-context';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';
import { STORE_OPTIONS } from './common-options';

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list)
  ...STORE_OPTIONS,
  MODEL_NAME_OPTION,
  {
    name: 'same-config',
    description:
      'Config file (path in the working directory): list the models built from a config with the same content hash.',
    type: 'string',
    env: ['MODEL_PIPELINE_SAME_CONFIG'],
  },
]);

async function run(ctx: CommandContext): Promise<CommandResult> {
  const file = ctx.options.string('same-config');
  if (!file) throw new UserError('find needs same-config: the config file whose builds to list');
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(path.resolve(ctx.deps.cwd, file));
  } catch {
    throw new UserError(`config file ${file} not found (in ${ctx.deps.cwd}); set same-config`);
  }
  const hash = createHash('sha256').update(bytes).digest('hex');
  const store = ctx.deps.store();
  const root = storeRoot(ctx);
  const listPrefix = ctx.options.string('model-name') ? scopeOf(ctx) : root ? root + '/' : '';
  const manifests = (await listAll(store, listPrefix)).filter((o) => {
    const p = placeOf(o.key, root);
    return p.kind === 'model' && p.name === MANIFEST_FILE;
  });
  const found: { prefix: string; config: string; created: string }[] = [];
  await mapLimit(manifests, 8, async (o) => {
    const got = await store.get(o.key);
    if (!got) return;
    try {
      const m = parseManifest(got.body.toString('utf8'), store.uri(o.key));
      if (m.config?.sha256 === hash)
        found.push({
          prefix: o.key.slice(0, -MANIFEST_FILE.length),
          config: m.config.path,
          created: o.lastModified.toISOString(),
        });
    } catch (err) {
      ctx.deps.logger.warn(`skipping ${(err as Error).message}`);
    }
  });
  found.sort((a, b) =>
    a.created < b.created ? 1 : a.created > b.created ? -1 : a.prefix < b.prefix ? -1 : 1,
  );
  const head = `${found.length} of ${manifests.length} models were built from a config with sha256 ${hash.slice(0, 12)}… (${file})`;
  return {
    outputs: { 'model-prefixes': JSON.stringify(found.map((f) => f.prefix)), 'config-sha256': hash },
    text: [head, ...found.map((f) => `${f.prefix}  ${f.created}  ${f.config}`)].join('\n'),
    summary: `### ${head}\n\n${markdownTable(
      ['model folder', 'created', 'config'],
      found.map((f) => [f.prefix, f.created, f.config]),
    )}\n`,
  };
}

export const findCommand: CommandDef = {
  name: 'find',
  summary: 'List the model folders built from a config with the same content hash (--same-config FILE).',
  options: OPTIONS,
  outputs: outputsOf('model-prefixes', 'config-sha256'),
  run,
};
