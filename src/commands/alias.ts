import { PipelineError } from '../core/errors';
import { markdownTable, textTable } from '../core/markdown';
import { defineOptions } from '../core/options';
import { aliasSchema, checkAliasName, parseJsonAs, registryKeys, type AliasRecord } from '../core/registry';
import {
  actorOf,
  ALIAS_OPTION,
  listAll,
  listFolder,
  MODEL_NAME_OPTION,
  MODEL_PREFIX_OPTION,
  modelRefFrom,
  readAlias,
  readManifest,
  REASON_OPTION,
  scopeOf,
} from './registry-context';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';
import { whileClaimed } from './retiring';
import { STORE_OPTIONS } from './common-options';

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list)
  ...STORE_OPTIONS,
  ALIAS_OPTION,
  MODEL_PREFIX_OPTION,
  MODEL_NAME_OPTION,
  REASON_OPTION,
]);

/** alias + model-prefix: set; alias alone: show; neither: list. */
async function run(ctx: CommandContext): Promise<CommandResult> {
  const store = ctx.deps.store();
  const name = ctx.options.string('alias');
  if (name && ctx.options.string('model-prefix')) {
    const alias = checkAliasName(name);
    const ref = await modelRefFrom(ctx, {});
    await listFolder(store, ref);
    await readManifest(store, ref); // an alias must name a complete model
    const record: AliasRecord = {
      schemaVersion: 1,
      alias,
      prefix: ref.folder,
      at: ctx.deps.clock.now().toISOString(),
      actor: actorOf(ctx),
      reason: ctx.options.string('reason'),
    };
    // under a claim: rotate either sees it and keeps the folder, or this run sees rotate's mark and stops
    await whileClaimed(store, ref.folder, `set alias ${alias} to`, ctx.deps.clock.now(), () =>
      store.put(registryKeys.alias(ref.scope, alias), JSON.stringify(record, null, 2), {
        contentType: 'application/json',
      }),
    );
    return {
      outputs: { alias, 'model-prefix': ref.folder, 'model-uri': store.uri(ref.folder) },
      text: `alias ${alias} -> ${ref.folder}`,
      summary: `alias \`${alias}\` -> \`${ref.folder}\`\n`,
    };
  }
  const scope = scopeOf(ctx);
  if (name) {
    const prefix = await readAlias(store, scope, name);
    return { outputs: { alias: name, 'model-prefix': prefix, 'model-uri': store.uri(prefix) }, text: prefix };
  }
  const rows: string[][] = [];
  for (const o of await listAll(store, registryKeys.aliasDir(scope))) {
    const got = await store.get(o.key);
    if (!got) continue;
    try {
      const r = parseJsonAs(aliasSchema, got.body.toString('utf8'), store.uri(o.key));
      rows.push([r.alias, r.prefix, r.at, r.actor ?? '-']);
    } catch (err) {
      throw new PipelineError(`${(err as Error).message}: set the alias again to repair it`);
    }
  }
  const header = ['alias', 'model folder', 'set at', 'by'];
  return {
    outputs: { aliases: JSON.stringify(Object.fromEntries(rows.map((r) => [r[0], r[1]]))) },
    text: rows.length ? textTable(header, rows) : 'no aliases',
    summary: `### aliases\n\n${markdownTable(header, rows)}\n`,
  };
}

export const aliasCommand: CommandDef = {
  name: 'alias',
  summary: 'Name a model folder: --alias NAME --model-prefix P sets, --alias NAME shows, no alias lists all.',
  options: OPTIONS,
  outputs: outputsOf('alias', 'model-prefix', 'model-uri', 'aliases'),
  run,
};
