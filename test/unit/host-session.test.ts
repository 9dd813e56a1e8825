import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LocalCompute } from '../../src/adapters/local/local-compute';
import { LocalHostSessions } from '../../src/adapters/local/local-host-session';
import { SshHostSessions, type ClosableShell, type SshAccess } from '../../src/adapters/ssh/ssh-host-session';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { UserError } from '../../src/core/errors';
import { STATE_INSTANCE_ID, STATE_KEY_NAME, STATE_LAUNCH_TOKEN } from '../../src/core/host-session';
import { TAG_LAUNCH_TOKEN } from '../../src/core/instance-tags';
import type { LaunchTargetSpec, ResolvedLaunchTargets } from '../../src/core/launch-targets';
import type {
  CloudCompute,
  ExecResult,
  HostKeys,
  HostSpec,
  HostStep,
  InstanceInfo,
  LaunchRequest,
} from '../../src/core/ports';
import { MemoryLogger } from '../helpers/memory-logger';

/** An in-memory cloud: instances and key pairs, every call recorded; faults set per test. */
class FakeCloud implements CloudCompute {
  readonly instances = new Map<string, InstanceInfo>();
  readonly keyPairs = new Set<string>();
  readonly launched: LaunchRequest[] = [];
  readonly calls: string[] = [];
  /** The launch reaches the cloud, but its answer is lost. */
  loseLaunchAnswer = false;
  terminateFailures = 0;
  private n = 0;

  async launch(req: LaunchRequest): Promise<InstanceInfo> {
    this.launched.push(req);
    const id = `i-${String(++this.n).padStart(8, '0')}`;
    this.instances.set(id, {
      id,
      state: 'pending',
      imageId: req.imageId,
      instanceType: req.instanceTypes[0],
      host: '10.0.0.1',
      tags: req.tags,
    });
    this.calls.push(`launch ${id}`);
    if (this.loseLaunchAnswer) throw new Error('socket hang up');
    return { ...this.instances.get(id)! };
  }
  async describe(id: string): Promise<InstanceInfo | undefined> {
    const i = this.instances.get(id);
    return i && { ...i };
  }
  async waitUntilRunning(id: string): Promise<InstanceInfo> {
    const i = this.instances.get(id)!;
    i.state = 'running';
    return { ...i };
  }
  async terminate(id: string): Promise<void> {
    this.calls.push(`terminate ${id}`);
    if (this.terminateFailures-- > 0) throw new Error('connection reset');
    const i = this.instances.get(id);
    if (i) i.state = 'terminated';
  }
  async findByTags(tags: Record<string, string>): Promise<InstanceInfo[]> {
    return [...this.instances.values()].filter(
      (i) => i.state !== 'terminated' && Object.entries(tags).every(([k, v]) => i.tags[k] === v),
    );
  }
  async createKeyPair(name: string): Promise<{ keyName: string; privateKey: string }> {
    this.keyPairs.add(name);
    this.calls.push(`create-key ${name}`);
    return { keyName: name, privateKey: `PRIVATE ${name}` };
  }
  async deleteKeyPair(keyName: string): Promise<void> {
    this.calls.push(`delete-key ${keyName}`);
    this.keyPairs.delete(keyName);
  }
  async hostKeys(): Promise<HostKeys> {
    return { keys: ['ssh-ed25519 AAAAconsole'], fingerprints: [] };
  }
  async resolveLaunchTargets(spec: LaunchTargetSpec): Promise<ResolvedLaunchTargets> {
    return {
      image: { imageId: spec.amiId ?? 'ami-found', via: 'test' },
      subnetIds: ['subnet-1'],
      securityGroupIds: ['sg-1'],
    };
  }
  live(): string[] {
    return [...this.instances.values()].filter((i) => i.state !== 'terminated').map((i) => i.id);
  }
}

/** A shell that answers (or never does) and records its access and closing. */
class FakeShell implements ClosableShell {
  closed = 0;
  constructor(
    readonly access: SshAccess,
    private readonly ready: boolean,
  ) {}
  async waitReady(): Promise<void> {
    if (!this.ready) throw new Error('SSH did not answer within 30s');
  }
  async exec(): Promise<ExecResult> {
    return { exitCode: 0 };
  }
  async pushDir(): Promise<void> {}
  async pushFile(): Promise<void> {}
  async pullFile(): Promise<void> {}
  async close(): Promise<void> {
    this.closed++;
  }
}

function spec(over: Partial<HostSpec> = {}, steps: HostStep[] = []): HostSpec {
  return {
    launch: {
      imageId: '',
      instanceTypes: ['g5.xlarge'],
      subnetIds: [],
      securityGroupIds: [],
      spot: false,
      rootVolumeGiB: 100,
      maxRuntimeSeconds: 3600,
      tags: { Name: 'model-pipeline search/1.0.0' },
    },
    targets: async () => ({ amiId: 'ami-0123' }),
    modelName: 'search',
    modelPrefix: 'search/1.0.0-abcdef0/',
    bootTimeoutSeconds: 30,
    onStep: (s) => steps.push(s),
    ...over,
  };
}

function ssh(cloud: FakeCloud, o: { ready?: boolean; state?: MemoryState } = {}) {
  const state = o.state ?? new MemoryState();
  const logger = new MemoryLogger();
  const shells: FakeShell[] = [];
  const sessions = new SshHostSessions({
    compute: () => cloud,
    state,
    logger,
    sshPort: 22,
    sshUser: 'ubuntu',
    openShell: (access) => {
      const s = new FakeShell(access, o.ready ?? true);
      shells.push(s);
      return s;
    },
  });
  return { sessions, state, logger, shells };
}

const signal = new AbortController().signal;

describe('the EC2 host session (fake cloud, fake shell)', () => {
  it('acquires with an ephemeral key, the launch token and console host keys, saving state first', async () => {
    const cloud = new FakeCloud();
    const { sessions, state, shells, logger } = ssh(cloud);
    const steps: HostStep[] = [];
    const host = await sessions.acquire(spec({}, steps), signal);

    expect(steps).toEqual(['launch', 'wait-running', 'wait-ssh']);
    const [keyName] = [...cloud.keyPairs];
    expect(keyName).toMatch(/^model-pipeline-search-[0-9a-f]{8}$/);
    const req = cloud.launched[0];
    expect(req).toMatchObject({
      imageId: 'ami-0123',
      subnetIds: ['subnet-1'],
      securityGroupIds: ['sg-1'],
      keyName,
      instanceTypes: ['g5.xlarge'],
    });
    expect(req.clientToken).toMatch(/^[0-9a-f]{24}$/);
    expect(req.tags[TAG_LAUNCH_TOKEN]).toBe(req.clientToken);
    expect(req.tags.Name).toBe('model-pipeline search/1.0.0');
    expect(state.get(STATE_KEY_NAME)).toBe(keyName);
    expect(state.get(STATE_LAUNCH_TOKEN)).toBe(req.clientToken);
    expect(state.get(STATE_INSTANCE_ID)).toBe(host.instance.id);
    expect(host.instance.state).toBe('running');
    expect(shells[0].access).toEqual({
      host: '10.0.0.1',
      privateKey: `PRIVATE ${keyName}`,
      hostKeys: { keys: ['ssh-ed25519 AAAAconsole'], fingerprints: [] },
    });
    expect(logger.masked).toEqual([`PRIVATE ${keyName}`]);
  });

  it('release closes the shell, terminates, deletes the key pair, and does it once however often called', async () => {
    const cloud = new FakeCloud();
    const { sessions, shells } = ssh(cloud);
    const steps: HostStep[] = [];
    const host = await sessions.acquire(spec({}, steps), signal);
    await Promise.all([host.release(), host.release()]);
    await host.release();
    const id = host.instance.id;
    expect(cloud.calls.filter((c) => !c.startsWith('launch') && !c.startsWith('create'))).toEqual([
      // newest first: the shell, then the instance, then the key pair made before it
      `terminate ${id}`,
      `delete-key ${[...cloud.calls].find((c) => c.startsWith('create-key'))!.slice('create-key '.length)}`,
    ]);
    expect(shells[0].closed).toBe(1);
    expect(cloud.live()).toEqual([]);
    expect(cloud.keyPairs.size).toBe(0);
    expect(steps.filter((s) => s === 'terminate')).toHaveLength(1);
  });

  it('a given key pair and pinned host keys are used as they are, and never deleted', async () => {
    const cloud = new FakeCloud();
    const { sessions, shells, state } = ssh(cloud);
    const pinned = { keys: ['ssh-ed25519 AAAApinned'], fingerprints: [] };
    const host = await sessions.acquire(
      spec({ keyName: 'team-key', privateKey: 'TEAM PRIVATE', pinnedHostKeys: pinned }),
      signal,
    );
    expect(cloud.launched[0].keyName).toBe('team-key');
    expect(shells[0].access).toMatchObject({ privateKey: 'TEAM PRIVATE', hostKeys: pinned });
    expect(state.get(STATE_KEY_NAME)).toBe('');
    await host.release();
    expect(cloud.calls.some((c) => c.startsWith('create-key') || c.startsWith('delete-key'))).toBe(false);
  });

  it('refuses key-name without its private key before making anything', async () => {
    const cloud = new FakeCloud();
    const { sessions, state } = ssh(cloud);
    await expect(sessions.acquire(spec({ keyName: 'team-key' }), signal)).rejects.toThrow(UserError);
    expect(cloud.calls).toEqual([]);
    expect(state.get(STATE_LAUNCH_TOKEN)).toBe('');
  });

  it('a failed acquire (SSH never answers) leaves nothing behind and rethrows its own error', async () => {
    const cloud = new FakeCloud();
    const { sessions, shells } = ssh(cloud, { ready: false });
    await expect(sessions.acquire(spec(), signal)).rejects.toThrow('SSH did not answer within 30s');
    expect(cloud.instances.size).toBe(1);
    expect(cloud.live()).toEqual([]);
    expect(cloud.keyPairs.size).toBe(0);
    expect(shells[0].closed).toBe(1);
  });

  it('a launch whose answer is lost: the instance is found by its token and terminated', async () => {
    const cloud = new FakeCloud();
    cloud.loseLaunchAnswer = true;
    const { sessions, state, logger } = ssh(cloud);
    await expect(sessions.acquire(spec(), signal)).rejects.toThrow('socket hang up');
    expect(cloud.instances.size).toBe(1);
    expect(cloud.live()).toEqual([]);
    expect(cloud.keyPairs.size).toBe(0);
    expect(state.get(STATE_INSTANCE_ID)).toBe('');
    expect(logger.text()).toMatch(/carries this run's launch token and is pending: terminating it/);
  });

  it('a failed acquire whose cleanup also fails keeps the first error and logs the leak', async () => {
    const cloud = new FakeCloud();
    cloud.terminateFailures = 1;
    const { sessions, logger } = ssh(cloud, { ready: false });
    await expect(sessions.acquire(spec(), signal)).rejects.toThrow('SSH did not answer within 30s');
    expect(logger.text()).toMatch(/error: could not terminate instance i-\d+: connection reset/);
    expect(cloud.keyPairs.size).toBe(0); // the key pair is still deleted
  });

  it('release reports an instance it could not terminate, after deleting the key pair', async () => {
    const cloud = new FakeCloud();
    const { sessions } = ssh(cloud);
    const host = await sessions.acquire(spec(), signal);
    cloud.terminateFailures = 1;
    await expect(host.release()).rejects.toThrow(/could not terminate instance i-\d+: connection reset/);
    expect(cloud.keyPairs.size).toBe(0);
  });

  it('releaseFromState (the post step) terminates the saved instance and deletes the saved key pair', async () => {
    const cloud = new FakeCloud();
    const crashed = ssh(cloud);
    const host = await crashed.sessions.acquire(spec(), signal);
    // the job dies here: no release. The post step is another process with only the saved state.
    const post = ssh(cloud, { state: crashed.state });
    await post.sessions.releaseFromState();
    expect(cloud.live()).toEqual([]);
    expect(cloud.keyPairs.size).toBe(0);
    expect(post.logger.text()).toMatch(`instance ${host.instance.id} of this job is still running`);
    // and again: nothing left to do is not an error
    await post.sessions.releaseFromState();
  });

  it('releaseFromState after a lost launch answer finds the instance by the saved token', async () => {
    const cloud = new FakeCloud();
    const state = new MemoryState();
    state.save(STATE_LAUNCH_TOKEN, 'tok');
    await cloud.launch({ ...spec().launch, tags: { [TAG_LAUNCH_TOKEN]: 'tok' } });
    await cloud.launch({ ...spec().launch, tags: { [TAG_LAUNCH_TOKEN]: 'another-run' } });
    await ssh(cloud, { state }).sessions.releaseFromState();
    expect(cloud.live()).toEqual(['i-00000002']);
  });

  it('releaseFromState with nothing saved makes no client', async () => {
    let made = false;
    const sessions = new SshHostSessions({
      compute: () => {
        made = true;
        return new FakeCloud();
      },
      state: new MemoryState(),
      logger: new MemoryLogger(),
      sshPort: 22,
      sshUser: 'ubuntu',
    });
    await sessions.releaseFromState();
    expect(made).toBe(false);
  });
});

describe('the local host session (real folders)', () => {
  const local = () => {
    const compute = new LocalCompute(mkdtempSync(path.join(tmpdir(), 'mp-host-')));
    const state = new MemoryState();
    const sessions = new LocalHostSessions({ compute: () => compute, state, logger: new MemoryLogger() });
    return { compute, state, sessions };
  };

  it('acquires a work folder with a shell in it; release removes it, once', async () => {
    const { compute, sessions, state } = local();
    const host = await sessions.acquire(spec(), signal);
    expect(state.get(STATE_INSTANCE_ID)).toBe(host.instance.id);
    const r = await host.shell.exec('pwd', { onOutput: () => undefined });
    expect(r.exitCode).toBe(0);
    expect(existsSync(compute.homeOf(host.instance.id))).toBe(true);
    await host.release();
    await host.release();
    expect(existsSync(compute.dirOf(host.instance.id))).toBe(false);
  });

  it('releaseFromState removes the folder a crashed run saved', async () => {
    const { compute, sessions, state } = local();
    const host = await sessions.acquire(spec(), signal);
    const post = new LocalHostSessions({ compute: () => compute, state, logger: new MemoryLogger() });
    await post.releaseFromState();
    expect(existsSync(compute.dirOf(host.instance.id))).toBe(false);
  });
});
