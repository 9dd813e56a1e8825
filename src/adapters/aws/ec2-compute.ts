import { randomBytes } from 'node:crypto';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateKeyPairCommand,
  DeleteKeyPairCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupRulesCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
  GetConsoleOutputCommand,
  RevokeSecurityGroupIngressCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2ClientConfig,
  type Filter,
  type Instance,
  type RunInstancesCommandInput,
  type RunInstancesCommandOutput,
  type SecurityGroupRule,
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
import {
  SSH_PORT,
  sshCidrsOfTags,
  sshRuleDescription,
  TAG_RULE_INSTANCE,
  TAG_SSH_CIDR,
} from '../../core/ssh-ingress';

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
// ... and removes its ssh-cidr rule
registerCleanupCommand(DescribeSecurityGroupRulesCommand);
registerCleanupCommand(RevokeSecurityGroupIngressCommand);

/** Not cut by the command's abort signal: teardown runs after it fired. */
const UNCUT = (): { abortSignal: AbortSignal } => ({ abortSignal: new AbortController().signal });

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
    const sshCidrs = req.sshCidrs ?? [];
    const tags = normalizeTags({
      ...req.tags,
      [TAG_LAUNCH_TOKEN]: token,
      // teardown (finally, post step, sweep) reads back which rule to remove from the instance itself
      ...(sshCidrs.length > 0 ? { [TAG_SSH_CIDR]: sshCidrs.join(' ') } : {}),
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
    if (sshCidrs.length > 0) {
      try {
        await this.openSsh(result, sshCidrs, token, signal);
      } catch (err) {
        // nothing else knows this instance yet: end it here (its rule, if any, goes with it)
        await this.terminate(result.InstanceId!).catch(() => undefined);
        throw err;
      }
    }
    return instanceInfo(result);
  }

  /**
   * Opens port 22 to each CIDR with a rule on the instance's security group (the first one tagged with the
   * marker, else the first), tagged at creation with the marker, the instance and the launch token. A rule
   * that already exists (a concurrent run from the same address) is used as it is: teardown removes it only
   * once no live instance needs it.
   */
  private async openSsh(
    inst: Instance,
    cidrs: string[],
    token: string | undefined,
    signal?: AbortSignal,
    again = false,
  ) {
    const id = inst.InstanceId!;
    let groupIds = (inst.SecurityGroups ?? []).map((g) => g.GroupId!).filter(Boolean);
    if (groupIds.length === 0)
      groupIds = ((await this.describeRaw(id))?.SecurityGroups ?? []).map((g) => g.GroupId!).filter(Boolean);
    if (groupIds.length === 0)
      throw new PipelineError(`instance ${id} has no security group to open port 22 on (ssh-cidr)`);
    let groupId = groupIds[0];
    if (groupIds.length > 1) {
      const out = await this.client.send(new DescribeSecurityGroupsCommand({ GroupIds: groupIds }), {
        abortSignal: signal,
      });
      const marked = (out.SecurityGroups ?? []).find((g) => tagRecord(g.Tags)[PIPELINE_TAG] === 'true');
      if (marked?.GroupId) groupId = marked.GroupId;
    }
    const ruleTags = tagList({
      [PIPELINE_TAG]: 'true',
      [TAG_RULE_INSTANCE]: id,
      ...(token ? { [TAG_LAUNCH_TOKEN]: token } : {}),
    });
    for (const cidr of cidrs) {
      const Description = sshRuleDescription(id, token);
      const v6 = cidr.includes(':');
      try {
        await this.client.send(
          new AuthorizeSecurityGroupIngressCommand({
            GroupId: groupId,
            IpPermissions: [
              {
                IpProtocol: 'tcp',
                FromPort: SSH_PORT,
                ToPort: SSH_PORT,
                ...(v6
                  ? { Ipv6Ranges: [{ CidrIpv6: cidr, Description }] }
                  : { IpRanges: [{ CidrIp: cidr, Description }] }),
              },
            ],
            TagSpecifications: [{ ResourceType: 'security-group-rule', Tags: ruleTags }],
          }),
          { abortSignal: signal },
        );
        this.log(`${again ? 're-opened' : 'opened'} port 22 of ${groupId} to ${cidr} for ${id}`);
      } catch (err) {
        if (errorCode(err) === 'InvalidPermission.Duplicate') {
          if (!again)
            this.log(
              `port 22 of ${groupId} is already open to ${cidr} (another run's rule); ${id} shares it`,
            );
          continue;
        }
        const e = describeAwsError(err, `opening port 22 of security group ${groupId} to ${cidr} (ssh-cidr)`);
        if (/access denied/.test(e.message))
          throw new PipelineError(`${e.message}; the group needs the tag ${PIPELINE_TAG}=true (docs/iam.md)`);
        throw e;
      }
    }
  }

  /**
   * Removes the tool's port-22 rules this instance used (its own, or one it shared) that no other live
   * instance needs: another run's rule, or one still needed by another run from the same address, stays.
   */
  private async closeSsh(inst: Instance): Promise<void> {
    const id = inst.InstanceId!;
    const cidrs = new Set(sshCidrsOfTags(tagRecord(inst.Tags)));
    const groupIds = (inst.SecurityGroups ?? []).map((g) => g.GroupId!).filter(Boolean);
    const candidates = new Map<string, SecurityGroupRule>();
    // rules made for this instance (found even when a terminated instance lists no groups any more)
    for (const r of await this.toolRules([{ Name: `tag:${TAG_RULE_INSTANCE}`, Values: [id] }]))
      candidates.set(r.SecurityGroupRuleId!, r);
    if (groupIds.length > 0 && cidrs.size > 0)
      for (const r of await this.toolRules([{ Name: 'group-id', Values: groupIds }]))
        if (cidrs.has(ruleCidr(r))) candidates.set(r.SecurityGroupRuleId!, r);
    for (const rule of candidates.values()) await this.revokeUnlessNeeded(rule, id);
  }

  /** The tool's ingress rules for port 22 (marker tag), with more filters. */
  private async toolRules(filters: Filter[]): Promise<SecurityGroupRule[]> {
    const rules: SecurityGroupRule[] = [];
    let NextToken: string | undefined;
    try {
      do {
        const out = await this.client.send(
          new DescribeSecurityGroupRulesCommand({
            Filters: [...filters, { Name: `tag:${PIPELINE_TAG}`, Values: ['true'] }],
            NextToken,
            MaxResults: 1000,
          }),
        );
        rules.push(...(out.SecurityGroupRules ?? []));
        NextToken = out.NextToken;
      } while (NextToken);
    } catch (err) {
      throw describeAwsError(err, 'listing the ssh-cidr rules');
    }
    return rules.filter(
      (r) =>
        !r.IsEgress &&
        r.IpProtocol === 'tcp' &&
        r.FromPort === SSH_PORT &&
        r.ToPort === SSH_PORT &&
        ruleCidr(r) !== '',
    );
  }

  /** Live instances (but `except`) in the rule's group whose ssh-cidr tag names the rule's block. */
  private async usersOf(rule: SecurityGroupRule, except: string | undefined): Promise<string[]> {
    const users: string[] = [];
    let NextToken: string | undefined;
    do {
      const out = await this.client.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'instance.group-id', Values: [rule.GroupId!] },
            { Name: 'tag-key', Values: [TAG_SSH_CIDR] },
            { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
          ],
          NextToken,
        }),
        UNCUT(),
      );
      for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? []))
        if (i.InstanceId !== except && sshCidrsOfTags(tagRecord(i.Tags)).includes(ruleCidr(rule)))
          users.push(i.InstanceId!);
      NextToken = out.NextToken;
    } while (NextToken);
    return users;
  }

  private async revokeUnlessNeeded(rule: SecurityGroupRule, except: string | undefined): Promise<boolean> {
    const where = `${rule.GroupId}/${rule.SecurityGroupRuleId} (port 22 from ${ruleCidr(rule)})`;
    const users = await this.usersOf(rule, except);
    if (users.length > 0) {
      this.log(`kept ${where}: ${users.join(', ')} still use it`);
      return false;
    }
    try {
      await this.client.send(
        new RevokeSecurityGroupIngressCommand({
          GroupId: rule.GroupId,
          SecurityGroupRuleIds: [rule.SecurityGroupRuleId!],
        }),
      );
      this.log(`removed ${where}`);
    } catch (err) {
      if (
        /^(InvalidPermission\.NotFound|InvalidSecurityGroupRuleId\.NotFound|InvalidGroup\.NotFound)/.test(
          errorCode(err),
        )
      )
        return true;
      throw describeAwsError(err, `removing the ssh-cidr rule ${where}`);
    }
    return true;
  }

  /** sweep: the tool's port-22 rules whose instances are gone and that no live instance needs. */
  async sweepSshRules(dryRun: boolean): Promise<string[]> {
    const swept: string[] = [];
    for (const rule of await this.toolRules([{ Name: `tag-key`, Values: [TAG_RULE_INSTANCE] }])) {
      const owner = (rule.Tags ?? []).find((t) => t.Key === TAG_RULE_INSTANCE)?.Value;
      const inst = owner ? await this.describeRaw(owner) : undefined;
      if (inst && !['shutting-down', 'terminated'].includes(inst.State?.Name ?? '')) continue;
      const where = `${rule.GroupId}/${rule.SecurityGroupRuleId}`;
      if (dryRun) {
        if ((await this.usersOf(rule, owner)).length === 0) swept.push(where);
      } else if (await this.revokeUnlessNeeded(rule, owner)) swept.push(where);
    }
    return swept;
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
        // again now: a concurrent run from the same address may have removed the rule this one shared
        const cidrs = sshCidrsOfTags(tagRecord(inst.Tags));
        if (cidrs.length > 0)
          await this.openSsh(inst, cidrs, tagRecord(inst.Tags)[TAG_LAUNCH_TOKEN], signal, true);
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

  /** Terminates the instance, then removes its ssh-cidr rule unless another live instance needs it. */
  async terminate(id: string): Promise<void> {
    let inst: Instance | undefined;
    try {
      const out = await this.client.send(new DescribeInstancesCommand({ InstanceIds: [id] }), UNCUT());
      inst = out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === id);
    } catch {
      // terminating matters more than the rule: sweep removes a rule left behind
    }
    try {
      await this.client.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    } catch (err) {
      if (errorCode(err) === 'InvalidInstanceID.NotFound') return;
      throw describeAwsError(err, `terminating instance ${id}`);
    }
    if (inst && sshCidrsOfTags(tagRecord(inst.Tags)).length > 0) await this.closeSsh(inst);
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

/** The CIDR block of an ingress rule ('' for rules from a group or a prefix list). */
function ruleCidr(r: SecurityGroupRule): string {
  return r.CidrIpv4 ?? r.CidrIpv6 ?? '';
}
