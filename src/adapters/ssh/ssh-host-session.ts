import { randomBytes } from 'node:crypto';
import { messageOf, UserError } from '../../core/errors';
import { launchInstance, releaseInstanceFromState, STATE_KEY_NAME, Teardown } from '../../core/host-session';
import type {
  CloudCompute,
  HostKeys,
  HostSession,
  HostSessions,
  HostSpec,
  InstanceInfo,
  Logger,
  RemoteShell,
  StateStore,
} from '../../core/ports';
import { ephemeralKeyName } from '../../core/train';
import { SshShell } from './ssh-shell';

/** A shell that must be closed (it keeps a key file and known_hosts on the runner). */
export type ClosableShell = RemoteShell & { close(): Promise<void> };

export interface SshAccess {
  host: string;
  privateKey: string;
  hostKeys: HostKeys;
}

export interface SshHostSessionsConfig {
  /** Built on first use: the post step of a run that saved nothing needs no client. */
  compute: () => CloudCompute;
  state: StateStore;
  logger: Logger;
  /** Overrides the instance's address (e.g. a forwarded port on 127.0.0.1). */
  sshHost?: string;
  sshPort: number;
  sshUser: string;
  /** The ssh-host option as the caller spells it, for the message when an instance has no address. */
  sshHostOption?: string;
  /** How the shell is opened; default: SshShell over the system ssh and rsync. */
  openShell?: (access: SshAccess) => ClosableShell;
}

/**
 * Hosts on a cloud compute reached over SSH (EC2): an ephemeral key pair unless the user gave one, the
 * launch targets resolved, the instance launched with its token, its host keys from its console output
 * (or pinned), and a shell once SSH answers. Everything made is undone by release, or by a failed acquire.
 */
export class SshHostSessions implements HostSessions {
  readonly backend = 'aws';

  constructor(private readonly c: SshHostSessionsConfig) {}

  async acquire(spec: HostSpec, signal: AbortSignal): Promise<HostSession> {
    if (spec.keyName && !spec.privateKey)
      throw new UserError(`key-name ${spec.keyName} needs its private key in ssh-private-key`);
    const log = this.c.logger;
    const compute = this.c.compute();
    const teardown = new Teardown();
    try {
      const key = spec.privateKey
        ? { keyName: spec.keyName, privateKey: spec.privateKey }
        : await this.ephemeralKey(compute, spec, teardown);

      spec.onStep?.('launch');
      const targets = await compute.resolveLaunchTargets(await spec.targets());
      log.info(`training AMI ${targets.image.imageId} (${targets.image.via})`);
      const req = {
        ...spec.launch,
        imageId: targets.image.imageId,
        subnetIds: targets.subnetIds,
        securityGroupIds: targets.securityGroupIds,
        keyName: key.keyName,
      };
      const instance = await launchInstance(
        compute,
        { state: this.c.state, log },
        req,
        teardown,
        spec,
        signal,
      );

      spec.onStep?.('wait-ssh');
      const hostKeys =
        spec.pinnedHostKeys ?? (await compute.hostKeys(instance.id, spec.bootTimeoutSeconds, signal));
      const opened = this.openShell(instance, key.privateKey, hostKeys);
      teardown.add(() => opened.close().catch(() => undefined));
      await opened.waitReady(spec.bootTimeoutSeconds, signal);
      return { instance, shell: opened, release: () => teardown.run() };
    } catch (err) {
      return teardown.abandon(err, log);
    }
  }

  /** A key pair for this run only, saved for the post step before it exists, deleted on release. */
  private async ephemeralKey(
    compute: CloudCompute,
    spec: HostSpec,
    teardown: Teardown,
  ): Promise<{ keyName: string; privateKey: string }> {
    const name = ephemeralKeyName(spec.modelName, randomBytes(4).toString('hex'));
    this.c.state.save(STATE_KEY_NAME, name);
    const pair = await compute.createKeyPair(name, { 'model-pipeline:model-prefix': spec.modelPrefix });
    this.c.logger.mask(pair.privateKey);
    teardown.add(async () => {
      try {
        await compute.deleteKeyPair(pair.keyName);
      } catch (err) {
        throw new Error(`could not delete key pair ${pair.keyName}: ${messageOf(err)}`, { cause: err });
      }
    });
    this.c.logger.info(`created ephemeral key pair ${pair.keyName}`);
    return pair;
  }

  private openShell(instance: InstanceInfo, privateKey: string, hostKeys: HostKeys): ClosableShell {
    const host = this.c.sshHost || instance.host;
    if (!host)
      throw new UserError(
        `instance ${instance.id} has no IP address to SSH to; set ${this.c.sshHostOption ?? 'ssh-host'}`,
      );
    const access = { host, privateKey, hostKeys };
    if (this.c.openShell) return this.c.openShell(access);
    return new SshShell({
      ...access,
      port: this.c.sshPort,
      user: this.c.sshUser,
      logger: this.c.logger,
    });
  }

  async releaseFromState(): Promise<void> {
    const io = { state: this.c.state, log: this.c.logger };
    const keyName = this.c.state.get(STATE_KEY_NAME);
    await releaseInstanceFromState(this.c.compute, io);
    if (keyName) {
      await this.c.compute().deleteKeyPair(keyName);
      this.c.logger.info(`key pair ${keyName} deleted`);
    }
  }
}
