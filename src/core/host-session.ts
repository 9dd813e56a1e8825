import { randomBytes } from 'node:crypto';
import { messageOf, PipelineError } from './errors';
import { TAG_LAUNCH_TOKEN } from './instance-tags';
import type { Compute, HostSpec, InstanceInfo, LaunchRequest, Logger, StateStore } from './ports';

/*
 * What the EC2 and the local host sessions share: the launch with its token and saved state, termination,
 * and a teardown that undoes, once, whatever was made so far.
 */

/** State names the action's post step reads to clean up after a cancelled or crashed run. */
export const STATE_INSTANCE_ID = 'instance-id';
export const STATE_KEY_NAME = 'ephemeral-key-name';
export const STATE_LAUNCH_TOKEN = 'launch-token';

const GONE = new Set(['terminated', 'shutting-down']);

/**
 * Undo actions registered as things are made, run newest first by `run`. Running twice runs them once;
 * every action is tried, and the failures come back as one error.
 */
export class Teardown {
  private readonly actions: (() => Promise<void>)[] = [];
  private done?: Promise<void>;

  add(action: () => Promise<void>): void {
    this.actions.push(action);
  }

  run(): Promise<void> {
    this.done ??= (async () => {
      const problems: string[] = [];
      for (const action of [...this.actions].reverse()) {
        try {
          await action();
        } catch (err) {
          problems.push(messageOf(err));
        }
      }
      if (problems.length > 0) throw new PipelineError(problems.join('; '));
    })();
    return this.done;
  }

  /** For a failed acquire: undo everything, log what could not be undone, rethrow the acquire's error. */
  async abandon(err: unknown, log: Logger): Promise<never> {
    await this.run().catch((problem: unknown) => log.error(messageOf(problem)));
    throw err;
  }
}

/** Terminate one instance; a failure to terminate is itself a failure (a leaked instance costs money). */
export async function terminateInstance(compute: Compute, log: Logger, id: string): Promise<void> {
  try {
    await compute.terminate(id);
    log.info(`terminated ${id}`);
  } catch (err) {
    throw new PipelineError(
      `could not terminate instance ${id}: ${messageOf(err)}; terminate it by hand (or run the sweep command)`,
    );
  }
}

/** Terminates every live instance tagged with the launch token (but `except`, already handled). */
export async function terminateByToken(
  compute: Compute,
  log: Logger,
  token: string,
  except?: string,
): Promise<void> {
  const found = await compute.findByTags({ [TAG_LAUNCH_TOKEN]: token });
  for (const i of found) {
    if (i.id === except || GONE.has(i.state)) continue;
    log.warn(`instance ${i.id} carries this run's launch token and is ${i.state}: terminating it`);
    await terminateInstance(compute, log, i.id);
  }
}

/**
 * Launches with a fresh launch token (ClientToken and tag), saved before the request so a lost answer still
 * finds the instance, and the id saved before anything else can fail. The teardown terminates the instance,
 * or whatever carries the token when the answer never came.
 */
export async function launchInstance(
  compute: Compute,
  io: { state: StateStore; log: Logger },
  req: LaunchRequest,
  teardown: Teardown,
  spec: HostSpec,
  signal: AbortSignal,
): Promise<InstanceInfo> {
  const token = randomBytes(12).toString('hex');
  const known: { id?: string } = {};
  io.state.save(STATE_LAUNCH_TOKEN, token);
  teardown.add(async () => {
    spec.onStep?.('terminate');
    if (known.id) await terminateInstance(compute, io.log, known.id);
    else await terminateByToken(compute, io.log, token);
  });
  const { id } = await compute.launch(
    { ...req, tags: { ...req.tags, [TAG_LAUNCH_TOKEN]: token }, clientToken: token },
    signal,
  );
  known.id = id;
  io.state.save(STATE_INSTANCE_ID, id);
  io.log.info(`instance ${id} launched`);
  spec.onStep?.('wait-running');
  return compute.waitUntilRunning(id, spec.bootTimeoutSeconds, signal);
}

/** The instance part of the post step: by launch token, then by saved id. */
export async function releaseInstanceFromState(
  compute: () => Compute,
  io: { state: StateStore; log: Logger },
): Promise<void> {
  const id = io.state.get(STATE_INSTANCE_ID);
  const token = io.state.get(STATE_LAUNCH_TOKEN);
  if (!id && !token) return;
  const c = compute();
  // killed between the launch request and its answer: only the token knows the instance
  if (token) await terminateByToken(c, io.log, token, id || undefined);
  if (!id) return;
  const info = await c.describe(id);
  if (info && !GONE.has(info.state)) {
    io.log.warn(`instance ${id} of this job is still ${info.state}: terminating it`);
    await terminateInstance(c, io.log, id);
  } else {
    io.log.info(`instance ${id} is already ${info?.state ?? 'gone'}`);
  }
}
