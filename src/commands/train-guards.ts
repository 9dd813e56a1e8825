import { PipelineError, UserError } from '../core/errors';
import type { Logger, ObjectStore } from '../core/ports';
import { folderState, resolveTarget, type ModelTarget } from './model-context';
import type { CommandContext } from './types';

/**
 * What every training engine checks before it takes the folder's lease: no stored folder already serves the
 * commit (unless force), the commit's own folder is not complete, and the training data is in the store.
 * Returns the resolution query (its `model-sources` hashes go into the manifest).
 */
export async function checkTrainTarget(
  ctx: CommandContext,
  store: ObjectStore,
  target: ModelTarget,
  dataKey: string | undefined,
): Promise<Awaited<ReturnType<typeof resolveTarget>>['query']> {
  const { resolution, query } = await resolveTarget(ctx, target);
  if (resolution.found && resolution.rule !== 'this-commit' && !ctx.options.bool('force'))
    throw new PipelineError(
      `${resolution.folder} is already the model of this commit (${resolution.rule}: ${resolution.reason}); nothing to train. Promote that folder, or set force to train this commit's own ${target.prefix}`,
    );
  if ((await folderState(store, target.prefix)).complete)
    throw new PipelineError(
      `model ${target.prefix} is already complete at ${store.uri(target.prefix)}; refusing to overwrite it (bump the version in ${target.config.path} to build a new one)`,
    );
  if (dataKey && !(await store.head(dataKey)))
    throw new UserError(
      `training data ${dataKey} is not in the store (${store.uri(dataKey)}): upload it, or set data-key ("none" for no input data)`,
    );
  return query;
}

/**
 * With the folder's lease held: the folder read again (another run may have completed it before the lease was
 * taken), and the leftovers of an incomplete run removed, so nothing of a live run is ever deleted.
 */
export async function clearFolderHoldingLease(
  store: ObjectStore,
  prefix: string,
  log: Logger,
): Promise<void> {
  const uri = store.uri(prefix);
  const state = await folderState(store, prefix);
  if (state.complete)
    throw new PipelineError(
      `model ${prefix} was completed by another run at ${uri} just now; its model stands`,
    );
  if (!state.partial) return;
  const leftovers: string[] = [];
  for await (const obj of store.list(prefix)) leftovers.push(obj.key);
  log.warn(`removing ${leftovers.length} leftover object(s) of an incomplete run under ${uri}`);
  await store.deleteMany(leftovers);
}
