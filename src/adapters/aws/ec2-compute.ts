import { randomBytes } from 'node:crypto';
import {
  CreateKeyPairCommand,
  DeleteKeyPairCommand,
  DescribeInstancesCommand,
  EC2Client,
  GetConsoleOutputCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2ClientConfig,
  type Filter,
  type Instance,
  type RunInstancesCommandInput,
  type RunInstancesCommandOutput,
  type Tag,
} from '@aws-sdk/client-ec2';
import { PipelineError, UserError } from '../../core/errors';
import {
  buildUserData,
  classifyLaunchError,
  describeAttempt,
  planLaunchAttempts,
  runLaunchPlan,
  type LaunchAttempt,
  type LaunchErrorClass,
} from '../../core/ec2-launch';
import { parseConsoleHostKeys } from '../../core/console-host-keys';
import { markerTags, normalizeTags, PIPELINE_TAG, TAG_LAUNCH_TOKEN } from '../../core/instance-tags';
import type { LaunchTargetSpec, ResolvedLaunchTargets } from '../../core/launch-targets';
import type { Clock, CloudCompute, HostKeys, InstanceInfo, LaunchRequest } from '../../core/ports';
import { systemClock } from '../system/clock';
import { bindAbortSignal, boundedClientConfig, registerCleanupCommand } from './client-config';
import { describeAwsError } from './errors';
import { DEFAULT_REGION } from '../../core/region';
import { describeImage, resolveLaunchTargets } from './ec2-resolve';

export interface Ec2ComputeOptions {
  region?: string;
  /** Custom endpoint (EC2-compatible clouds, moto in tests). */
  endpoint?: string;
  /** A ready client (tests wrap the real one to inject faults); region and endpoint are then ignored. */
  client?: EC2Client;
  clock?: Clock;
  /** Progress lines (launch attempts, waiting for running); never secrets. */
  log?: (message: string) => void;
  /** The command's abort signal: every call but cleanup (terminate, delete key pair) ends when it fires. */
  signal?: AbortSignal;
  /** Delay between DescribeInstances polls while waiting for running. */
  pollMs?: number;
  /** Delay between GetConsoleOutput polls while waiting for host keys (the console fills slowly). */
  consolePollMs?: number;
}

export function ec2ClientConfig(o: { region?: string; endpoint?: string }): EC2ClientConfig {
  return { ...boundedClientConfig(), region: o.region ?? DEFAULT_REGION, endpoint: o.endpoint || undefined };
}

/**
 * False only for a clear EC2 refusal (a 4xx answer, or a capacity or quota code): anything else (timeout,
 * reset connection, 5xx) may have come after EC2 accepted the request.
 */
function mayHaveLaunched(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  if (status !== undefined && status < 500) return false;
  return (
    classifyLaunchError(errorCode(err), '', 'on-demand').kind === 'fatal' &&
    !/^(Invalid|Unauthorized|AuthFailure|AccessDenied)/.test(errorCode(err))
  );
}

// a stopped train still terminates its instance and deletes its key pair
registerCleanupCommand(TerminateInstancesCommand);
registerCleanupCommand(DeleteKeyPairCommand);

function errorCode(err: unknown): string {
  const e = err as { name?: string; Code?: string };
  return e?.Code ?? e?.name ?? 'Error';
}

function tagList(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

function tagRecord(tags: Tag[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) if (t.Key !== undefined) out[t.Key] = t.Value ?? '';
  return out;
}

export function instanceInfo(i: Instance): InstanceInfo {
  return {
    id: i.InstanceId!,
    state: i.State?.Name ?? 'unknown',
    instanceType: i.InstanceType,
    imageId: i.ImageId,
    // a runner outside the VPC (GitHub-hosted) needs the public address; inside it, the private one works
    host: i.PublicIpAddress || i.PrivateIpAddress || undefined,
    launchedAt: i.LaunchTime,
    tags: tagRecord(i.Tags),
  };
}

const FAILED_STATES = new Set(['shutting-down', 'terminated', 'stopping', 'stopped']);
const LIVE_STATES = ['pending', 'running', 'shutting-down', 'stopping', 'stopped'];
const AUTH_CODES =
  /^(AuthFailure|UnauthorizedOperation|AccessDenied|InvalidClientTokenId|SignatureDoesNotMatch|CredentialsProviderError)/;

/** The Compute port on EC2: launch with fallback, wait, terminate, find by tags, SSH key pairs, host keys. */
export class Ec2Compute implements CloudCompute {
  readonly client: EC2Client;
  private readonly clock: Clock;
  private readonly log: (message: string) => void;
  private readonly pollMs: number;
  private readonly consolePollMs: number;

  constructor(options: Ec2ComputeOptions = {}) {
    this.client = options.client ?? bindAbortSignal(new EC2Client(ec2ClientConfig(options)), options.signal);
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? (() => undefined);
    this.pollMs = options.pollMs ?? 2000;
    this.consolePollMs = options.consolePollMs ?? 5000;
  }

  resolveLaunchTargets(spec: LaunchTargetSpec): Promise<ResolvedLaunchTargets> {
    return resolveLaunchTargets(this.client, spec);
  }

  /**
   * Tries the plan's (type, subnet, market) attempts in order, moving on only on capacity and quota errors.
   * RunInstances is never given the abort signal: a cancelled request may still have started an instance
   * whose id would then be lost. Cancellation is checked between attempts; the caller terminates what
   * this returns.
   */
  async launch(req: LaunchRequest, signal?: AbortSignal): Promise<InstanceInfo> {
    const image = await describeImage(this.client, req.imageId);
    if (!image.rootDeviceName)
      throw new UserError(`AMI ${req.imageId} reports no root device name; it cannot be used for training`);
    if (!Number.isInteger(req.rootVolumeGiB) || req.rootVolumeGiB < 1 || req.rootVolumeGiB > 16384)
      throw new UserError(`root-volume-gib must be between 1 and 16384, got ${req.rootVolumeGiB}`);
    // one token per launch, tagged on the instance; each attempt's ClientToken derives from it
    const token = req.clientToken ?? randomBytes(12).toString('hex');
    const launchedAt = this.clock.now();
    const tags = normalizeTags({
      ...req.tags,
      [TAG_LAUNCH_TOKEN]: token,
      ...markerTags(req.maxRuntimeSeconds, launchedAt),
    });
    let attemptNo = 0;
    const userData = Buffer.from(
      buildUserData(req.maxRuntimeSeconds, launchedAt, req.userData),
      'utf8',
    ).toString('base64');
    const attempts = planLaunchAttempts(req.instanceTypes, req.subnetIds, req.spot);

    const base: RunInstancesCommandInput = {
      ImageId: req.imageId,
      MinCount: 1,
      MaxCount: 1,
      KeyName: req.keyName || undefined,
      SecurityGroupIds: req.securityGroupIds.length > 0 ? req.securityGroupIds : undefined,
      IamInstanceProfile: req.instanceProfile
        ? req.instanceProfile.startsWith('arn:')
          ? { Arn: req.instanceProfile }
          : { Name: req.instanceProfile }
        : undefined,
      BlockDeviceMappings: [
        {
          DeviceName: image.rootDeviceName,
          Ebs: {
            VolumeSize: req.rootVolumeGiB,
            VolumeType: 'gp3',
            Encrypted: true,
            DeleteOnTermination: true,
          },
        },
      ],
      // hop limit 2: training often runs in a container, which is one hop further from IMDS
      MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 2 },
      InstanceInitiatedShutdownBehavior: 'terminate',
      UserData: userData,
    };

    const tryOne = async (a: LaunchAttempt): Promise<Instance> => {
      this.log(`launching ${describeAttempt(a)}`);
      const resourceTags = ['instance', 'volume', ...(a.market === 'spot' ? ['spot-instances-request'] : [])];
      const clientToken = `${token}-${++attemptNo}`;
      const send = this.client.send(
        new RunInstancesCommand({
          ...base,
          ClientToken: clientToken,
          InstanceType: a.instanceType as RunInstancesCommandInput['InstanceType'],
          SubnetId: a.subnetId,
          InstanceMarketOptions:
            a.market === 'spot'
              ? {
                  MarketType: 'spot',
                  SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' },
                }
              : undefined,
          TagSpecifications: resourceTags.map((ResourceType) => ({
            ResourceType: ResourceType as 'instance',
            Tags: tagList(tags),
          })),
        }),
        // never cut by the command's abort: an accepted request whose answer is dropped leaks an instance
        { abortSignal: new AbortController().signal },
      );
      let out: RunInstancesCommandOutput;
      try {
        out = await send;
      } catch (err) {
        // EC2 may have started the instance and the answer got lost: look for it before giving up
        const found = mayHaveLaunched(err) ? await this.findLaunched(token, err) : undefined;
        if (!found) throw err;
        return found;
      }
      const inst = out.Instances?.[0];
      if (!inst?.InstanceId) throw new PipelineError('RunInstances returned no instance');
      return inst;
    };

    const { result, attempt } = await runLaunchPlan(attempts, tryOne, {
      signal,
      errorInfo: (err) => ({ code: errorCode(err), message: (err as Error)?.message ?? String(err) }),
      fatal: (err, a, cls) => this.fatalLaunchError(err, a, cls),
      onFailure: (f, cls) =>
        this.log(
          `no ${cls.kind === 'capacity' ? 'capacity' : cls.kind === 'quota' ? 'quota' : 'spot'} for ${describeAttempt(f.attempt)} (${f.code}); trying the next option`,
        ),
    });
    this.log(`launched ${result.InstanceId} (${describeAttempt(attempt)})`);
    return instanceInfo(result);
  }

  /**
   * The instance of a launch whose RunInstances answer was lost, found by its launch-token tag (a few tries:
   * DescribeInstances lags behind RunInstances). More than one (a retried request the cloud did not
   * deduplicate) keeps the first and terminates the rest.
   */
  private async findLaunched(token: string, cause: unknown): Promise<Instance | undefined> {
    this.log(
      `RunInstances failed without an EC2 answer (${errorCode(cause)}); looking for the instance by its launch token`,
    );
    for (let i = 0; i < 4; i++) {
      let found: Instance[] = [];
      try {
        const out = await this.client.send(
          new DescribeInstancesCommand({
            Filters: [
              { Name: `tag:${TAG_LAUNCH_TOKEN}`, Values: [token] },
              { Name: 'instance-state-name', Values: ['pending', 'running'] },
            ],
          }),
          { abortSignal: new AbortController().signal },
        );
        found = (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
      } catch {
        // the lookup itself failed: try again, the instance (if any) is still tagged
      }
      if (found.length > 0) {
        found.sort((a, b) => (a.InstanceId! < b.InstanceId! ? -1 : 1));
        const [keep, ...extra] = found;
        for (const x of extra) {
          this.log(`terminating ${x.InstanceId}: a second instance of the same launch`);
          await this.terminate(x.InstanceId!);
        }
        this.log(`found ${keep.InstanceId} by its launch token`);
        return keep;
      }
      await this.clock.sleep(1000 * (i + 1));
    }
    return undefined;
  }

  private fatalLaunchError(err: unknown, a: LaunchAttempt, cls: LaunchErrorClass): Error {
    const code = errorCode(err);
    const what = `launching ${describeAttempt(a)}`;
    if (AUTH_CODES.test(code)) return describeAwsError(err, what);
    const message = `${what} failed: ${code}: ${(err as Error)?.message ?? String(err)}${cls.hint ? `; ${cls.hint}` : ''}`;
    return cls.userError ? new UserError(message) : new PipelineError(message);
  }

  async describe(id: string): Promise<InstanceInfo | undefined> {
    try {
      const out = await this.client.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
      const inst = out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === id);
      return inst ? instanceInfo(inst) : undefined;
    } catch (err) {
      if (errorCode(err) === 'InvalidInstanceID.NotFound') return undefined;
      throw describeAwsError(err, `describing instance ${id}`);
    }
  }

  private async describeRaw(id: string): Promise<Instance | undefined> {
    try {
      const out = await this.client.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
      return out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === id);
    } catch (err) {
      if (errorCode(err) === 'InvalidInstanceID.NotFound') return undefined;
      throw describeAwsError(err, `describing instance ${id}`);
    }
  }

  /** Polls every pollMs until running; fails at once if the instance is going away (spot reclaim, watchdog). */
  async waitUntilRunning(id: string, timeoutSeconds: number, signal?: AbortSignal): Promise<InstanceInfo> {
    const started = this.clock.now().getTime();
    const deadline = started + timeoutSeconds * 1000;
    let lastState = '';
    let lastReport = started;
    for (;;) {
      if (signal?.aborted) throw new PipelineError(`stopped waiting for ${id}: cancelled`);
      const inst = await this.describeRaw(id);
      // a fresh id can be unknown to DescribeInstances for a moment (eventual consistency)
      const state = inst?.State?.Name ?? 'not visible yet';
      const now = this.clock.now().getTime();
      const waited = Math.round((now - started) / 1000);
      if (inst && state === 'running') {
        this.log(`${id} is running (after ${waited}s)`);
        return instanceInfo(inst);
      }
      if (inst && FAILED_STATES.has(state)) {
        const why = inst.StateReason?.Message ?? inst.StateTransitionReason ?? 'no reason given';
        throw new PipelineError(`instance ${id} is ${state} instead of running: ${why}`);
      }
      if (state !== lastState || now - lastReport >= 15_000) {
        this.log(`waiting for ${id} to run: ${state} (${waited}s of ${timeoutSeconds}s)`);
        lastState = state;
        lastReport = now;
      }
      if (now >= deadline)
        throw new PipelineError(`instance ${id} was still ${state} after ${timeoutSeconds}s; giving up`);
      try {
        await this.clock.sleep(Math.min(this.pollMs, Math.max(0, deadline - now)), signal);
      } catch {
        throw new PipelineError(`stopped waiting for ${id}: cancelled`);
      }
    }
  }

  async terminate(id: string): Promise<void> {
    try {
      await this.client.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    } catch (err) {
      if (errorCode(err) === 'InvalidInstanceID.NotFound') return;
      throw describeAwsError(err, `terminating instance ${id}`);
    }
  }

  async findByTags(tags: Record<string, string>): Promise<InstanceInfo[]> {
    const Filters: Filter[] = [
      ...Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] })),
      { Name: 'instance-state-name', Values: LIVE_STATES },
    ];
    const found: InstanceInfo[] = [];
    let NextToken: string | undefined;
    try {
      do {
        const out = await this.client.send(
          new DescribeInstancesCommand({ Filters, NextToken, MaxResults: 500 }),
        );
        for (const r of out.Reservations ?? [])
          for (const i of r.Instances ?? []) found.push(instanceInfo(i));
        NextToken = out.NextToken;
      } while (NextToken);
    } catch (err) {
      throw describeAwsError(err, 'listing instances by tag');
    }
    return found;
  }

  /** ed25519 where the cloud has it, else rsa. The private key is returned once and never logged here. */
  async createKeyPair(
    name: string,
    tags: Record<string, string>,
  ): Promise<{ keyName: string; privateKey: string }> {
    const TagSpecifications = [
      {
        ResourceType: 'key-pair' as const,
        Tags: tagList(normalizeTags({ [PIPELINE_TAG]: 'true', ...tags })),
      },
    ];
    let lastErr: unknown;
    for (const KeyType of ['ed25519', 'rsa'] as const) {
      try {
        const out = await this.client.send(
          new CreateKeyPairCommand({ KeyName: name, KeyType, KeyFormat: 'pem', TagSpecifications }),
        );
        if (!out.KeyMaterial) throw new PipelineError(`CreateKeyPair ${name} returned no key material`);
        return { keyName: out.KeyName ?? name, privateKey: out.KeyMaterial };
      } catch (err) {
        lastErr = err;
        const code = errorCode(err);
        if (KeyType === 'ed25519' && /^(InvalidParameter|Unsupported|InvalidKeyPair\.Format)/.test(code))
          continue;
        if (code === 'InvalidKeyPair.Duplicate')
          throw new PipelineError(`key pair ${name} already exists; another run may be using this name`);
        break;
      }
    }
    throw describeAwsError(lastErr, `creating key pair ${name}`);
  }

  async deleteKeyPair(keyName: string): Promise<void> {
    try {
      await this.client.send(new DeleteKeyPairCommand({ KeyName: keyName }));
    } catch (err) {
      if (errorCode(err) === 'InvalidKeyPair.NotFound') return;
      throw describeAwsError(err, `deleting key pair ${keyName}`);
    }
  }

  /** One read of the console; undefined until cloud-init has printed the host keys. */
  async consoleHostKeys(id: string): Promise<HostKeys | undefined> {
    let text: string;
    try {
      // Latest: the newest output (Nitro instances buffer the rest, which can arrive after the boot timeout)
      const out = await this.client.send(new GetConsoleOutputCommand({ InstanceId: id, Latest: true }));
      text = out.Output ? Buffer.from(out.Output, 'base64').toString('utf8') : '';
    } catch (err) {
      throw describeAwsError(err, `reading the console output of ${id}`);
    }
    const parsed = parseConsoleHostKeys(text);
    if (!parsed) return undefined;
    return { keys: parsed.publicKeys, fingerprints: parsed.fingerprints.map((f) => f.fingerprint) };
  }

  async hostKeys(id: string, timeoutSeconds: number, signal?: AbortSignal): Promise<HostKeys> {
    const deadline = this.clock.now().getTime() + timeoutSeconds * 1000;
    for (;;) {
      if (signal?.aborted) throw new PipelineError(`stopped waiting for the host keys of ${id}: cancelled`);
      const keys = await this.consoleHostKeys(id);
      if (keys) return keys;
      const now = this.clock.now().getTime();
      if (now >= deadline)
        throw new PipelineError(
          `the console output of ${id} showed no SSH host keys within ${timeoutSeconds}s ` +
            '(the AMI needs cloud-init printing them); pin the key with ssh-host-key instead',
        );
      this.log(`waiting for ${id} to print its SSH host keys to the console`);
      try {
        await this.clock.sleep(Math.min(this.consolePollMs, deadline - now), signal);
      } catch {
        throw new PipelineError(`stopped waiting for the host keys of ${id}: cancelled`);
      }
    }
  }
}
