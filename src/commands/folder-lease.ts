import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ciRunLabel, type CiContext } from '../core/ci-env';
import { messageOf, PipelineError, PreconditionFailedError } from '../core/errors';
import {
  describeLease,
  LEASE_TTL_SECONDS,
  leaseExpired,
  leaseKey,
  newLease,
  parseLease,
  renewLease,
  type Lease,
} from '../core/lease';
import type { Clock, Logger, ObjectStore } from '../core/ports';

/** A lease this run holds on a model folder. */
export interface HeldLease {
  readonly key: string;
  /** Aborted when the lease is lost: another run took it over (this one missed its heartbeats). */
  readonly lost: AbortSignal;
  /** Renews the lease now by compare-and-swap: proof that the folder is still this run's. */
  confirm(): Promise<void>;
  /** Stops the heartbeat and deletes the lease if it is still this run's; safe to call twice. */
  release(): Promise<void>;
}

export interface LeaseOptions {
  ttlSeconds?: number;
  /** How often the heartbeat renews the lease (default a third of the TTL). */
  heartbeatMs?: number;
}

/** What a lease says about the run that takes it. */
export function runLabel(ci: CiContext): string {
  return ciRunLabel(ci) ?? ci.runUrl ?? `local:${hostname()}:${process.pid}`;
}

/** The lease on a model folder as it stands, undefined when there is none or it has expired. */
export async function liveLease(store: ObjectStore, folder: string, now: Date): Promise<Lease | undefined> {
  const key = leaseKey(folder);
  const got = await store.get(key);
  const lease = got && parseLease(got.body.toString('utf8'), store.uri(key));
  return lease && !leaseExpired(lease, now) ? lease : undefined;
}

/**
 * Takes the lease on `folder`: create-only, or compare-and-swap over an expired one. A live lease of another
 * run is a PipelineError naming that run; nothing of its folder is touched.
 */
export async function acquireFolderLease(
  store: ObjectStore,
  clock: Clock,
  log: Logger,
  folder: string,
  run: string,
  options: LeaseOptions = {},
): Promise<HeldLease> {
  const ttl = options.ttlSeconds ?? LEASE_TTL_SECONDS;
  const key = leaseKey(folder);
  const owner = randomBytes(8).toString('hex');
  let lease = newLease({ prefix: folder, owner, run, now: clock.now(), ttlSeconds: ttl });
  let etag: string | undefined;
  for (let round = 0; etag === undefined; round++) {
    if (round >= 5)
      throw new PipelineError(`could not take the lease ${store.uri(key)}: it kept changing hands`);
    const body = JSON.stringify(lease, null, 2);
    try {
      etag = (await store.put(key, body, { ifNoneMatch: true, contentType: 'application/json' })).etag ?? '';
      break;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
    const got = await store.get(key);
    if (!got) continue; // released in between: try to create it again
    const held = parseLease(got.body.toString('utf8'), store.uri(key));
    const now = clock.now();
    if (held && !leaseExpired(held, now))
      throw new PipelineError(
        `another run is training ${folder} (${describeLease(held)}); this run leaves its files alone. ` +
          'Wait for it, or cancel it; an abandoned lease can be taken over once it expires.',
      );
    log.warn(
      held
        ? `taking over the expired lease on ${folder} (${describeLease(held)})`
        : `taking over the unreadable lease ${store.uri(key)}`,
    );
    lease = newLease({ prefix: folder, owner, run, now, ttlSeconds: ttl });
    try {
      etag =
        (
          await store.put(key, JSON.stringify(lease, null, 2), {
            ifMatch: got.etag,
            contentType: 'application/json',
          })
        ).etag ?? '';
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      // another run renewed or took it first: read again
    }
  }

  const lostController = new AbortController();
  const stop = new AbortController();
  let chain: Promise<void> = Promise.resolve();

  const renew = async (): Promise<void> => {
    if (lostController.signal.aborted) throw lostController.signal.reason;
    const next = renewLease(lease, clock.now(), ttl);
    try {
      const r = await store.put(key, JSON.stringify(next, null, 2), {
        ifMatch: etag,
        contentType: 'application/json',
      });
      lease = next;
      etag = r.etag ?? etag;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      const got = await store.get(key).catch(() => undefined);
      const other = got && parseLease(got.body.toString('utf8'), store.uri(key));
      const reason = new PipelineError(
        `this run lost its lease on ${folder}` +
          (other && other.owner !== owner ? ` to ${describeLease(other)}` : ' (it was removed)') +
          ': it stopped, and leaves the folder to the run that holds the lease now',
      );
      lostController.abort(reason);
      throw reason;
    }
  };
  // one renewal at a time: the heartbeat and confirm() share the etag
  const serial = (): Promise<void> => (chain = chain.catch(() => undefined).then(renew));

  const heartbeatMs = options.heartbeatMs ?? Math.max(1000, (ttl * 1000) / 3);
  void (async () => {
    while (!stop.signal.aborted && !lostController.signal.aborted) {
      try {
        await clock.sleep(heartbeatMs, stop.signal);
      } catch {
        return;
      }
      if (stop.signal.aborted) return;
      try {
        await serial();
      } catch (err) {
        if (lostController.signal.aborted) return;
        log.warn(`lease heartbeat on ${folder} failed (${messageOf(err)}); retrying`);
      }
    }
  })();

  let released = false;
  return {
    key,
    lost: lostController.signal,
    confirm: serial,
    async release() {
      if (released) return;
      released = true;
      stop.abort();
      await chain.catch(() => undefined);
      if (lostController.signal.aborted) return;
      const got = await store.get(key);
      const now = got && parseLease(got.body.toString('utf8'), store.uri(key));
      if (now?.owner === owner) await store.deleteMany([key]);
    },
  };
}
