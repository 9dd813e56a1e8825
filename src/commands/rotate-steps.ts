import { MANIFEST_FILE, parseManifest } from '../core/manifest';
import { planStepCaches, STEPS_DIR, type StepCachePlanEntry } from '../core/steps';
import { formatBytes } from '../core/status';
import { listAll, mapLimit, storeRoot } from './registry-context';
import type { CommandContext } from './types';

export interface StepCacheRotation {
  entries: StepCachePlanEntry[];
  doomed: StepCachePlanEntry[];
  deletedObjects: number;
  /** One line for rotate's report; empty when the store holds no step caches. */
  line: string;
}

/**
 * Rotation's rule for step caches (`<store-prefix>/_steps/<key>/`): garbage once no kept model's manifest
 * records the key and it is older than grace-days. Runs after the model folder plan, with its kept folders.
 */
export async function rotateStepCaches(
  ctx: CommandContext,
  o: { keptFolders: readonly string[]; dryRun: boolean },
): Promise<StepCacheRotation> {
  const store = ctx.deps.store();
  const root = storeRoot(ctx);
  const objects = await listAll(store, (root ? root + '/' : '') + STEPS_DIR + '/');
  if (objects.length === 0) return { entries: [], doomed: [], deletedObjects: 0, line: '' };
  const referenced = new Set<string>();
  await mapLimit([...o.keptFolders], 8, async (folder) => {
    const got = await store.get(folder + MANIFEST_FILE);
    if (!got) return;
    try {
      for (const s of parseManifest(got.body.toString('utf8'), store.uri(folder + MANIFEST_FILE)).steps ?? [])
        referenced.add(s.key);
    } catch (err) {
      ctx.deps.logger.warn((err as Error).message);
    }
  });
  const entries = planStepCaches({
    objects,
    root,
    referenced,
    now: ctx.deps.clock.now(),
    graceDays: ctx.options.int('grace-days'),
  });
  const doomed = entries.filter((e) => e.action === 'delete');
  let deletedObjects = 0;
  if (!o.dryRun && doomed.length > 0)
    deletedObjects = (await store.deleteMany(doomed.flatMap((e) => e.objectKeys))).deleted;
  const bytes = doomed.reduce((n, e) => n + e.bytes, 0);
  const line =
    `step caches: ${o.dryRun ? 'would delete' : 'deleted'} ${doomed.length} (${formatBytes(bytes)}) that no kept model records, ` +
    `kept ${entries.length - doomed.length}`;
  return { entries, doomed, deletedObjects, line };
}
