import { setFlagsFromString } from 'node:v8';

/**
 * V8 flags for a short-lived process whose JavaScript heap is small (10-15 MB) and whose garbage is mostly
 * Buffers that die young (socket reads, file reads, inflate output), which scavenges free. By default V8 also
 * runs a full mark-compact each time some tens of MB more Buffer memory exist, or the small old generation
 * grows a little: fetch-model of a 1 GiB model ran 134-204 of them on node 24 and about 150 on node 22,
 * each marking the whole heap to free next to nothing.
 *
 * - `--heap-growing-percent=400` (every V8): after a full GC the old generation may grow to 5x its live size
 *   before the next (V8's own factor is 1.1-4 by its GC speed).
 * - `--external-memory-accounted-in-global-limit` (V8 13.6 to 14.x, Node 24 and 25): Buffer memory counts
 *   toward that same limit instead of its own 64 MB trigger. A V8 without it prints "unrecognized flag", so
 *   it is set only on the versions known to have it.
 *
 * Measured on fetch-model of a 1 GiB model from the bench's plain file server (2 cores, paired runs):
 * node 24: 48-58 major GCs with the second flag alone, 8 with both (1 at 900%); node 22: 148-151 -> 9;
 * user CPU 2-4 s less per run on either, wall time 1-2.5 s less, peak RSS 200 -> 270 MB (node 24) and
 * 156 -> 180 MB (node 22). A 1 GiB upload is unchanged (173 MB, same time); rotate over 100k objects
 * (local backend): 200 -> 203 MB at 900%.
 */
export function heapFlagsFor(v8Version: string): string[] {
  const [major, minor] = v8Version.split('.').map(Number);
  // 13.6 to 14.x: checked on node 24 and 25; a later V8 may drop the flag and print an error for it
  const external = (major === 13 && minor >= 6) || major === 14;
  return ['--heap-growing-percent=400', ...(external ? ['--external-memory-accounted-in-global-limit'] : [])];
}

/** Sets heapFlagsFor's flags; called first by the CLI and the action's main step, before any large transfer. */
export function tuneHeap(
  v8Version: string = process.versions.v8,
  set: (flag: string) => void = setFlagsFromString,
): void {
  for (const flag of heapFlagsFor(v8Version)) set(flag);
}
