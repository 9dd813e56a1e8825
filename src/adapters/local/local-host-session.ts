import { launchInstance, releaseInstanceFromState, Teardown } from '../../core/host-session';
import type { HostSession, HostSessions, HostSpec, Logger, StateStore } from '../../core/ports';
import type { LocalCompute } from './local-compute';
import { LocalShell } from './local-shell';

/**
 * The local backend's hosts: a work folder from LocalCompute with a LocalShell in it. No keys, no SSH; the
 * launch token, saved state and termination work as on EC2, so the post step finds a crashed run's folder.
 */
export class LocalHostSessions implements HostSessions {
  readonly backend = 'local';

  constructor(private readonly c: { compute: () => LocalCompute; state: StateStore; logger: Logger }) {}

  async acquire(spec: HostSpec, signal: AbortSignal): Promise<HostSession> {
    const compute = this.c.compute();
    const teardown = new Teardown();
    try {
      spec.onStep?.('launch');
      const io = { state: this.c.state, log: this.c.logger };
      const instance = await launchInstance(compute, io, spec.launch, teardown, spec, signal);
      spec.onStep?.('wait-ssh');
      const shell = new LocalShell(compute.homeOf(instance.id), { pidsDir: compute.pidsDirOf(instance.id) });
      await shell.waitReady();
      return { instance, shell, release: () => teardown.run() };
    } catch (err) {
      return teardown.abandon(err, this.c.logger);
    }
  }

  releaseFromState(): Promise<void> {
    return releaseInstanceFromState(this.c.compute, { state: this.c.state, log: this.c.logger });
  }
}
