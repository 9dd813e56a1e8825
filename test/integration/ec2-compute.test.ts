import {
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateTagsCommand,
  CreateVpcCommand,
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeVolumesCommand,
  EC2Client,
  RegisterImageCommand,
  RunInstancesCommand,
  type Instance,
  GetConsoleOutputCommand,
} from '@aws-sdk/client-ec2';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ec2ClientConfig, Ec2Compute } from '../../src/adapters/aws/ec2-compute';
import {
  AMI_VERSION_TAG,
  resolveImage,
  resolveLaunchTargets,
  resolveSubnets,
} from '../../src/adapters/aws/ec2-resolve';
import { PipelineError, UserError } from '../../src/core/errors';
import { WATCHDOG_MARKER } from '../../src/core/ec2-launch';
import type { Clock, LaunchRequest } from '../../src/core/ports';
import { motoEndpoint } from '../helpers/aws';

// moto hands out 10.x addresses for these instances: nothing here ever connects to them

const run = randomBytes(4).toString('hex');
const octet = 1 + (parseInt(run.slice(0, 2), 16) % 250);

function client(): EC2Client {
  return new EC2Client(ec2ClientConfig({ endpoint: motoEndpoint() }));
}

/** Fails chosen RunInstances calls with an EC2-style error, passes everything else to the real client. */
function faultyClient(
  fail: (input: { InstanceType?: string; InstanceMarketOptions?: unknown }) => string | undefined,
): { client: EC2Client; runCalls: string[] } {
  const c = client();
  const realSend = c.send.bind(c) as (cmd: unknown, opts?: unknown) => Promise<unknown>;
  const runCalls: string[] = [];
  c.send = (async (command: unknown, options?: unknown) => {
    if (command instanceof RunInstancesCommand) {
      const input = command.input;
      runCalls.push(`${input.InstanceType}/${input.InstanceMarketOptions ? 'spot' : 'on-demand'}`);
      const code = fail(input);
      if (code) throw Object.assign(new Error(`${code}: injected by the test`), { name: code, Code: code });
    }
    return realSend(command, options);
  }) as EC2Client['send'];
  return { client: c, runCalls };
}

/** moto's IAM query API (no IAM SDK client in this project): an instance profile to launch with. */
async function createInstanceProfile(name: string): Promise<string> {
  const r = await fetch(motoEndpoint(), {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization:
        'AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=x',
    },
    body: `Action=CreateInstanceProfile&InstanceProfileName=${name}&Version=2010-05-08`,
  });
  const text = await r.text();
  const arn = /<Arn>([^<]+)<\/Arn>/.exec(text)?.[1];
  if (!r.ok || !arn) throw new Error(`CreateInstanceProfile failed: ${text.slice(0, 300)}`);
  return arn;
}

async function describeRaw(id: string): Promise<Instance> {
  const out = await client().send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return out.Reservations![0].Instances![0];
}

async function registerImage(name: string, version?: string): Promise<string> {
  const c = client();
  const out = await c.send(new RegisterImageCommand({ Name: name, RootDeviceName: '/dev/sda1' }));
  const id = out.ImageId!;
  if (version)
    await c.send(
      new CreateTagsCommand({ Resources: [id], Tags: [{ Key: AMI_VERSION_TAG, Value: version }] }),
    );
  return id;
}

async function creationSecond(imageId: string): Promise<string> {
  const out = await client().send(new DescribeImagesCommand({ ImageIds: [imageId] }));
  return (out.Images?.[0]?.CreationDate ?? '').slice(0, 19);
}

let vpcId: string;
let subnetA: string;
let subnetB: string;
let groupId: string;
const groupName = `mp-train-${run}`;
const cidrA = `10.${octet}.1.0/24`;
const cidrB = `10.${octet}.2.0/24`;
let imageId: string;
const version = `9.${octet}.${parseInt(run.slice(2, 4), 16)}`;

beforeAll(async () => {
  const c = client();
  vpcId = (await c.send(new CreateVpcCommand({ CidrBlock: `10.${octet}.0.0/16` }))).Vpc!.VpcId!;
  subnetA = (await c.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: cidrA }))).Subnet!.SubnetId!;
  subnetB = (await c.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: cidrB }))).Subnet!.SubnetId!;
  groupId = (
    await c.send(new CreateSecurityGroupCommand({ GroupName: groupName, Description: 'test', VpcId: vpcId }))
  ).GroupId!;
  imageId = await registerImage(`mp-train-${run}-base`, `base-${version}`);
});

const silentClock = (now: () => Date): Clock => ({ now, sleep: async () => undefined });

function request(over: Partial<LaunchRequest> = {}): LaunchRequest {
  return {
    imageId,
    instanceTypes: ['t3.large'],
    subnetIds: [subnetA],
    securityGroupIds: [groupId],
    spot: false,
    rootVolumeGiB: 123,
    maxRuntimeSeconds: 7200,
    tags: { Name: `test ${run}`, 'model-pipeline:model-prefix': `1.0.0-${run}`, 'test-run': run },
    ...over,
  };
}

const launched: string[] = [];
afterAll(async () => {
  const compute = new Ec2Compute({ endpoint: motoEndpoint() });
  for (const id of launched) await compute.terminate(id);
});

describe('Ec2Compute.launch', () => {
  it('launches with every safety setting: tags, IMDSv2, terminate on shutdown, encrypted gp3 root, watchdog', async () => {
    const log: string[] = [];
    const compute = new Ec2Compute({ endpoint: motoEndpoint(), log: (m) => log.push(m) });
    const before = Date.now();
    const info = await compute.launch(request({ instanceProfile: undefined, keyName: undefined }));
    launched.push(info.id);
    expect(info.id).toMatch(/^i-/);
    expect(info.instanceType).toBe('t3.large');
    expect(info.imageId).toBe(imageId);

    const raw = await describeRaw(info.id);
    expect(raw.SubnetId).toBe(subnetA);
    expect(raw.SecurityGroups?.map((g) => g.GroupId)).toEqual([groupId]);
    expect(raw.MetadataOptions).toMatchObject({ HttpTokens: 'required', HttpEndpoint: 'enabled' });
    const tags = Object.fromEntries((raw.Tags ?? []).map((t) => [t.Key, t.Value]));
    expect(tags).toMatchObject({
      Name: `test ${run}`,
      'model-pipeline': 'true',
      'model-pipeline:model-prefix': `1.0.0-${run}`,
      'model-pipeline:max-runtime-seconds': '7200',
      'test-run': run,
    });
    const expires = Date.parse(tags['model-pipeline:expires-at']!);
    expect(expires).toBeGreaterThanOrEqual(before + 7200_000 - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 7200_000);

    const c = client();
    const shutdown = await c.send(
      new DescribeInstanceAttributeCommand({
        InstanceId: info.id,
        Attribute: 'instanceInitiatedShutdownBehavior',
      }),
    );
    expect(shutdown.InstanceInitiatedShutdownBehavior?.Value).toBe('terminate');
    const userData = await c.send(
      new DescribeInstanceAttributeCommand({ InstanceId: info.id, Attribute: 'userData' }),
    );
    const script = Buffer.from(userData.UserData?.Value ?? '', 'base64').toString('utf8');
    expect(script).toContain(WATCHDOG_MARKER);
    expect(script).toContain('max_seconds=7200');

    const root = raw.BlockDeviceMappings?.find((b) => b.DeviceName === '/dev/sda1');
    expect(root?.Ebs?.DeleteOnTermination).toBe(true);
    const vol = (await c.send(new DescribeVolumesCommand({ VolumeIds: [root!.Ebs!.VolumeId!] }))).Volumes![0];
    expect(vol).toMatchObject({ Size: 123, VolumeType: 'gp3', Encrypted: true });
    expect(Object.fromEntries((vol.Tags ?? []).map((t) => [t.Key, t.Value]))).toMatchObject({
      'model-pipeline': 'true',
      'test-run': run,
    });
    expect(log.some((l) => l.includes('launched ' + info.id))).toBe(true);
  });

  it('passes the key pair, instance profile and extra user data', async () => {
    const compute = new Ec2Compute({ endpoint: motoEndpoint() });
    const key = await compute.createKeyPair(`mp-${run}-launch`, { 'test-run': run });
    const profileArn = await createInstanceProfile(`mp-train-${run}`);
    try {
      const info = await compute.launch(
        request({
          keyName: key.keyName,
          instanceProfile: `mp-train-${run}`,
          userData: '#cloud-config\npackages: [rsync]\n',
        }),
      );
      launched.push(info.id);
      const raw = await describeRaw(info.id);
      expect(raw.KeyName).toBe(key.keyName);
      expect(raw.IamInstanceProfile?.Arn).toBe(profileArn);
      // an ARN works as well as a name
      const byArn = await compute.launch(request({ instanceProfile: profileArn }));
      launched.push(byArn.id);
      expect((await describeRaw(byArn.id)).IamInstanceProfile?.Arn).toBe(profileArn);
      const ud = await client().send(
        new DescribeInstanceAttributeCommand({ InstanceId: info.id, Attribute: 'userData' }),
      );
      const text = Buffer.from(ud.UserData?.Value ?? '', 'base64').toString('utf8');
      expect(text).toMatch(/^Content-Type: multipart\/mixed/);
      expect(text).toContain('packages: [rsync]');
      expect(text).toContain(WATCHDOG_MARKER);
    } finally {
      await compute.deleteKeyPair(key.keyName);
    }
  });

  it('launches spot when asked', async () => {
    const compute = new Ec2Compute({ endpoint: motoEndpoint() });
    const info = await compute.launch(request({ spot: true }));
    launched.push(info.id);
    expect((await describeRaw(info.id)).InstanceLifecycle).toBe('spot');
  });

  it('falls back to the next type on a capacity error, and the attempt is logged', async () => {
    const f = faultyClient((input) =>
      input.InstanceType === 't3.large' ? 'InsufficientInstanceCapacity' : undefined,
    );
    const log: string[] = [];
    const compute = new Ec2Compute({ client: f.client, log: (m) => log.push(m) });
    const info = await compute.launch(
      request({ instanceTypes: ['t3.large', 'm5.large'], subnetIds: [subnetA, subnetB] }),
    );
    launched.push(info.id);
    // t3.large failed in both subnets (zones), then m5.large worked in the first
    expect(f.runCalls).toEqual(['t3.large/on-demand', 't3.large/on-demand', 'm5.large/on-demand']);
    const raw = await describeRaw(info.id);
    expect(raw.InstanceType).toBe('m5.large');
    expect(raw.SubnetId).toBe(subnetA);
    expect(log.join('\n')).toMatch(
      /no capacity for t3\.large on-demand in subnet-.*InsufficientInstanceCapacity/,
    );
  });

  it('falls back from spot to on-demand when spot has no capacity', async () => {
    const f = faultyClient((input) =>
      input.InstanceMarketOptions ? 'InsufficientInstanceCapacity' : undefined,
    );
    const compute = new Ec2Compute({ client: f.client });
    const info = await compute.launch(request({ spot: true, instanceTypes: ['t3.large'] }));
    launched.push(info.id);
    expect(f.runCalls).toEqual(['t3.large/spot', 't3.large/on-demand']);
    expect((await describeRaw(info.id)).InstanceLifecycle).toBeUndefined();
  });

  it('does not retry an authorization error on other types', async () => {
    const f = faultyClient(() => 'UnauthorizedOperation');
    const compute = new Ec2Compute({ client: f.client });
    const err = await compute
      .launch(request({ instanceTypes: ['t3.large', 'm5.large'], subnetIds: [subnetA, subnetB] }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as Error).message).toMatch(/access denied.*iam-policy/);
    expect(f.runCalls).toEqual(['t3.large/on-demand']);
  });

  it('says so when no type has capacity anywhere', async () => {
    const f = faultyClient(() => 'InsufficientInstanceCapacity');
    const compute = new Ec2Compute({ client: f.client });
    await expect(compute.launch(request({ instanceTypes: ['t3.large', 'm5.large'] }))).rejects.toThrow(
      /no EC2 capacity for any instance type.*t3\.large.*m5\.large/,
    );
    expect(f.runCalls).toHaveLength(2);
  });

  it('refuses an unknown AMI before launching anything', async () => {
    const f = faultyClient(() => undefined);
    const compute = new Ec2Compute({ client: f.client });
    await expect(compute.launch(request({ imageId: 'ami-0000000000000dead' }))).rejects.toThrow(UserError);
    expect(f.runCalls).toEqual([]);
  });
});

describe('Ec2Compute lifecycle', () => {
  it('waits until running, finds by tags, terminates idempotently', async () => {
    const compute = new Ec2Compute({ endpoint: motoEndpoint() });
    const info = await compute.launch(request({ tags: { 'test-run': run, 'test-case': 'lifecycle' } }));
    launched.push(info.id);
    const running = await compute.waitUntilRunning(info.id, 60);
    expect(running.state).toBe('running');
    expect(running.host).toMatch(/^10\./);
    expect(running.launchedAt).toBeInstanceOf(Date);

    const found = await compute.findByTags({ 'test-run': run, 'test-case': 'lifecycle' });
    expect(found.map((i) => i.id)).toEqual([info.id]);
    expect(found[0].tags['model-pipeline']).toBe('true');

    await compute.terminate(info.id);
    await compute.terminate(info.id);
    await compute.terminate('i-0123456789abcdef0');
    expect((await compute.describe(info.id))?.state).toBe('terminated');
    expect(await compute.findByTags({ 'test-run': run, 'test-case': 'lifecycle' })).toEqual([]);
    expect(await compute.describe('i-0123456789abcdef0')).toBeUndefined();
  });

  it('fails clearly when the instance dies while waiting', async () => {
    const compute = new Ec2Compute({ endpoint: motoEndpoint() });
    const info = await compute.launch(request());
    await compute.terminate(info.id);
    await expect(compute.waitUntilRunning(info.id, 30)).rejects.toThrow(
      new RegExp(`instance ${info.id} is (shutting-down|terminated) instead of running`),
    );
  });

  it('polls while pending, reporting progress, and honours the abort signal and timeout', async () => {
    const c = client();
    const realSend = c.send.bind(c) as (cmd: unknown, opts?: unknown) => Promise<unknown>;
    let describes = 0;
    let pendingFor = 3;
    // the instance looks pending for the first polls, as a real one does while booting
    c.send = (async (command: unknown, options?: unknown) => {
      const out = (await realSend(command, options)) as { Reservations?: { Instances?: Instance[] }[] };
      if (command instanceof DescribeInstancesCommand) {
        describes++;
        if (describes <= pendingFor)
          for (const r of out.Reservations ?? [])
            for (const i of r.Instances ?? []) i.State = { Name: 'pending' };
      }
      return out;
    }) as EC2Client['send'];
    let t = 0;
    const clock: Clock = {
      now: () => new Date(1_000_000 + t),
      sleep: async (ms) => {
        t += ms;
      },
    };
    const log: string[] = [];
    const compute = new Ec2Compute({ client: c, clock, log: (m) => log.push(m), pollMs: 2000 });
    const info = await compute.launch(request());
    launched.push(info.id);

    describes = 0;
    const running = await compute.waitUntilRunning(info.id, 60);
    expect(running.state).toBe('running');
    expect(describes).toBe(4);
    expect(log.filter((l) => l.startsWith(`waiting for ${info.id} to run: pending`)).length).toBeGreaterThan(
      0,
    );

    describes = 0;
    pendingFor = 1000;
    await expect(compute.waitUntilRunning(info.id, 10)).rejects.toThrow(/still pending after 10s/);

    describes = 0;
    const ac = new AbortController();
    ac.abort();
    await expect(compute.waitUntilRunning(info.id, 60, ac.signal)).rejects.toThrow(/cancelled/);
    expect(describes).toBe(0);
  });
});

describe('Ec2Compute key pairs and host keys', () => {
  it('creates an ed25519 key pair whose private key ssh-keygen accepts, and deletes it idempotently', async () => {
    const compute = new Ec2Compute({ endpoint: motoEndpoint() });
    const name = `mp-${run}-key`;
    const key = await compute.createKeyPair(name, { 'test-run': run });
    expect(key.keyName).toBe(name);
    expect(key.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-key-'));
    try {
      const file = path.join(dir, 'id');
      writeFileSync(file, key.privateKey, { mode: 0o600 });
      const pub = spawnSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' });
      expect(pub.status).toBe(0);
      expect(pub.stdout).toMatch(/^ssh-ed25519 /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const listed = await client().send(new DescribeKeyPairsCommand({ KeyNames: [name] }));
    expect(listed.KeyPairs?.[0]?.Tags).toEqual(
      expect.arrayContaining([{ Key: 'model-pipeline', Value: 'true' }]),
    );
    await expect(compute.createKeyPair(name, {})).rejects.toThrow(/already exists/);

    await compute.deleteKeyPair(name);
    await compute.deleteKeyPair(name);
    await expect(client().send(new DescribeKeyPairsCommand({ KeyNames: [name] }))).rejects.toThrow();
  });

  it('gives up clearly when the console shows no host keys', async () => {
    const compute = new Ec2Compute({
      endpoint: motoEndpoint(),
      clock: silentClock(() => new Date()),
      consolePollMs: 1,
    });
    const info = await compute.launch(request());
    launched.push(info.id);
    // moto's console output is a fixed boot log without cloud-init's host key block
    expect(await compute.consoleHostKeys(info.id)).toBeUndefined();
    // the newest output is asked for: Nitro instances otherwise return a buffer that may lag the boot
    const seen: unknown[] = [];
    const c = client();
    const send = c.send.bind(c) as (cmd: unknown, opts?: unknown) => Promise<unknown>;
    c.send = ((cmd: { input: unknown }, opts?: unknown) => {
      if (cmd instanceof GetConsoleOutputCommand) seen.push(cmd.input);
      return send(cmd, opts);
    }) as EC2Client['send'];
    await new Ec2Compute({ client: c }).consoleHostKeys(info.id);
    expect(seen).toEqual([{ InstanceId: info.id, Latest: true }]);
    await expect(compute.hostKeys(info.id, 0)).rejects.toThrow(/showed no SSH host keys.*ssh-host-key/);
  });
});

describe('resolvers', () => {
  it('finds the newest available AMI by its ami-version tag; an explicit ami-id wins', async () => {
    const v = `${version}-r`;
    const older = await registerImage(`mp-train-${run}-old`, v);
    // CreationDate has one-second resolution: make "newer" really newer
    while ((await creationSecond(older)) === new Date().toISOString().slice(0, 19))
      await new Promise((r) => setTimeout(r, 200));
    const newer = await registerImage(`mp-train-${run}-new`, v);
    const other = await registerImage(`mp-train-${run}-other`, `${v}-other`);

    const c = client();
    const byTag = await resolveImage(c, { amiVersion: v });
    expect(byTag).toMatchObject({
      imageId: newer,
      rootDeviceName: '/dev/sda1',
      via: `tag ${AMI_VERSION_TAG}=${v}`,
    });
    expect((await resolveImage(c, { amiVersion: v, amiId: older })).imageId).toBe(older);
    // no image has the tag: the name pattern is used
    const byName = await resolveImage(c, { amiVersion: 'nope', amiNamePattern: `mp-train-${run}-o*` });
    expect(byName).toMatchObject({ imageId: other, name: `mp-train-${run}-other` });
    const withVersion = await resolveImage(c, {
      amiVersion: 'old',
      amiNamePattern: `mp-train-${run}-{version}`,
    });
    expect(withVersion.imageId).toBe(older);
    await expect(resolveImage(c, { amiVersion: `${v}-missing` })).rejects.toThrow(
      /no available AMI owned by this account matches tag model-pipeline:ami-version=/,
    );
    await expect(resolveImage(c, {})).rejects.toThrow(UserError);
    await expect(resolveImage(c, { amiId: 'ami-0000000000000dead' })).rejects.toThrow(/does not exist/);
  });

  it('finds subnets by CIDR and security groups by name, in one parallel resolution', async () => {
    const c = client();
    const targets = await resolveLaunchTargets(c, {
      amiId: imageId,
      subnetCidrs: [cidrB, cidrA],
      securityGroupNames: [groupName],
    });
    expect(targets).toMatchObject({
      image: { imageId, rootDeviceName: '/dev/sda1' },
      subnetIds: [subnetB, subnetA],
      vpcId,
      securityGroupIds: [groupId],
    });
    expect((await resolveSubnets(c, { subnetIds: [subnetA] })).vpcId).toBe(vpcId);
    await expect(resolveSubnets(c, { subnetCidrs: [`10.${octet}.99.0/24`] })).rejects.toThrow(
      /no subnet has the CIDR block/,
    );
    await expect(resolveSubnets(c, { subnetIds: ['subnet-0000000000000dead'] })).rejects.toThrow(UserError);
    await expect(
      resolveLaunchTargets(c, {
        amiId: imageId,
        subnetIds: [subnetA],
        securityGroupNames: [`${groupName}-missing`],
      }),
    ).rejects.toThrow(/no security group named/);
    await expect(
      resolveLaunchTargets(c, { amiId: imageId, securityGroupIds: ['sg-0000000000000dead'] }),
    ).rejects.toThrow(UserError);
    // through the port, as train calls it
    const compute = new Ec2Compute({ endpoint: motoEndpoint() });
    expect((await compute.resolveLaunchTargets({ amiId: imageId, subnetIds: [subnetA] })).subnetIds).toEqual([
      subnetA,
    ]);
  });
});
