import { randomBytes } from 'node:crypto';
import { PipelineError } from '../core/errors';
import { claimKey, retiringKey, retiringSchema, type RetiringRecord } from '../core/lease';
import { MANIFEST_FILE } from '../core/manifest';
import type { ObjectStore } from '../core/ports';
import { parseJsonAs } from '../core/registry';

/**
 * The handshake between rotate and the commands that make a model folder referenced (promote, demote,
 * alias). rotate writes a retiring marker, then reads claims, pointers and aliases, and keeps whatever it
 * finds referenced. A referencing command writes a claim, then reads the retiring marker, and only then
 * writes its pointer or alias (removing the claim after). Each side writes before it reads, so at least one
 * sees the other: either rotate sees the claim (or the finished pointer) and keeps the folder, or the
 * command sees the marker and changes nothing. Nothing is ever undone, so no old reference comes back.
 */

export async function retiringOf(store: ObjectStore, folder: string): Promise<RetiringRecord | undefined> {
  const key = retiringKey(folder);
  const got = await store.get(key);
  if (!got) return undefined;
  try {
    return parseJsonAs(retiringSchema, got.body.toString('utf8'), store.uri(key));
  } catch {
    // an unreadable marker still says rotate meant to delete the folder
    return { schemaVersion: 1, folder, run: 'unknown', at: 'unknown' };
  }
}

/**
 * Runs `write` (which makes `folder` referenced) under a claim: refused with a PipelineError, nothing
 * written, when rotate has marked the folder or already deleted its manifest.
 */
export async function whileClaimed<T>(
  store: ObjectStore,
  folder: string,
  what: string,
  at: Date,
  write: () => Promise<T>,
): Promise<T> {
  const key = claimKey(folder, randomBytes(6).toString('hex'));
  await store.put(key, JSON.stringify({ schemaVersion: 1, folder, what, at: at.toISOString() }), {
    ifNoneMatch: true,
    contentType: 'application/json',
  });
  try {
    const r = await retiringOf(store, folder);
    if (r)
      throw new PipelineError(
        `cannot ${what} ${folder}: rotate is deleting it (run ${r.run}, since ${r.at}); nothing was changed. ` +
          `If no rotate is running, remove ${store.uri(retiringKey(folder))} (the next rotate clears stale markers).`,
      );
    if (!(await store.head(folder + MANIFEST_FILE)))
      throw new PipelineError(
        `cannot ${what} ${folder}: it has no ${MANIFEST_FILE} (deleted, or never completed); nothing was changed`,
      );
    return await write();
  } finally {
    await store.deleteMany([key]);
  }
}
