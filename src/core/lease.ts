import * as z from './schema';
import { joinKey } from './identity';
import { parseJsonAs, REGISTRY_DIR } from './registry';

/**
 * A lease on one model folder: the run that holds it is the only one that may write or clean the folder.
 * Taken create-only, renewed by compare-and-swap (heartbeat), taken over by compare-and-swap once expired.
 * It lives in the scope's registry (`<scope>_registry/leases/<version>-<sha7>.json`), never in the model
 * folder, so the folder's own listing (complete / partial) is untouched by it.
 */
export const leaseSchema = z.looseObject({
  schemaVersion: z.literal(1),
  prefix: z.string(),
  /** Random per train process: two jobs of one CI run never share it. */
  owner: z.string(),
  /** The CI run (ciRunLabel), URL, or host and pid of a local run: for people. */
  run: z.string(),
  acquiredAt: z.string(),
  heartbeatAt: z.string(),
  expiresAt: z.string(),
});
export type Lease = z.infer<typeof leaseSchema>;

/** Default time a lease lives without a heartbeat; the holder renews it every third of this. */
export const LEASE_TTL_SECONDS = 600;

/** `<scope>_registry/leases/<name>.json` for the model folder `<scope><name>/`. */
export function leaseKey(folder: string): string {
  const { scope, name } = splitFolder(folder);
  return joinKey(scope, REGISTRY_DIR, 'leases', `${name}.json`);
}

/** `<scope>_registry/retiring/<name>.json`: rotate is deleting `<scope><name>/`; promote and alias refuse it. */
export function retiringKey(folder: string): string {
  const { scope, name } = splitFolder(folder);
  return joinKey(scope, REGISTRY_DIR, 'retiring', `${name}.json`);
}

/**
 * `<scope>_registry/claims/<name>/<nonce>.json`: a promote, demote or alias is about to reference
 * `<scope><name>/`; rotate keeps a claimed folder.
 */
export function claimKey(folder: string, nonce: string): string {
  const { scope, name } = splitFolder(folder);
  return joinKey(scope, REGISTRY_DIR, 'claims', name, `${nonce}.json`);
}

/** The model folder a lease, retiring or claim key is about (the inverse of leaseKey, retiringKey, claimKey). */
export function folderOfRegistryKey(key: string, kind: 'leases' | 'retiring' | 'claims'): string | undefined {
  const re =
    kind === 'claims'
      ? new RegExp(`^(.*?)${REGISTRY_DIR}/claims/([^/]+)/[^/]+\\.json$`)
      : new RegExp(`^(.*?)${REGISTRY_DIR}/${kind}/([^/]+)\\.json$`);
  const m = re.exec(key);
  return m ? `${m[1]}${m[2]}/` : undefined;
}

function splitFolder(folder: string): { scope: string; name: string } {
  const f = folder.replace(/\/+$/, '');
  const cut = f.lastIndexOf('/');
  return { scope: cut >= 0 ? f.slice(0, cut + 1) : '', name: f.slice(cut + 1) };
}

export function newLease(input: {
  prefix: string;
  owner: string;
  run: string;
  now: Date;
  ttlSeconds: number;
}): Lease {
  const at = input.now.toISOString();
  return {
    schemaVersion: 1,
    prefix: input.prefix,
    owner: input.owner,
    run: input.run,
    acquiredAt: at,
    heartbeatAt: at,
    expiresAt: new Date(input.now.getTime() + input.ttlSeconds * 1000).toISOString(),
  };
}

export function renewLease(lease: Lease, now: Date, ttlSeconds: number): Lease {
  return {
    ...lease,
    heartbeatAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlSeconds * 1000).toISOString(),
  };
}

/** An unreadable lease counts as expired: it protects nothing and may be taken over. */
export function leaseExpired(lease: Lease | undefined, now: Date): boolean {
  if (!lease) return true;
  const t = Date.parse(lease.expiresAt);
  return Number.isNaN(t) || t <= now.getTime();
}

export function parseLease(text: string, where: string): Lease | undefined {
  try {
    return parseJsonAs(leaseSchema, text, where);
  } catch {
    return undefined;
  }
}

/** "run X, heartbeat T, until U": how messages name the holder of a lease. */
export function describeLease(lease: Lease): string {
  return `run ${lease.run}, last heartbeat ${lease.heartbeatAt}, lease until ${lease.expiresAt}`;
}

/** What rotate writes (create-only) before it deletes a model folder. */
export const retiringSchema = z.looseObject({
  schemaVersion: z.literal(1),
  folder: z.string(),
  run: z.string(),
  at: z.string(),
});
export type RetiringRecord = z.infer<typeof retiringSchema>;

/**
 * A retiring marker or claim older than this belongs to a run that died: the next rotate clears the marker
 * and ignores the claim.
 */
export const STALE_RETIRING_SECONDS = 3600;
