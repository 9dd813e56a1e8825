import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupRulesCommand,
  EC2Client,
  RegisterImageCommand,
  RevokeSecurityGroupIngressCommand,
  TerminateInstancesCommand,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';
import { randomBytes } from 'node:crypto';
import { ec2ClientConfig, Ec2Compute } from '../../src/adapters/aws/ec2-compute';
import type { LaunchRequest } from '../../src/core/ports';
import { motoEndpoint } from '../helpers/aws';

// the training instance's port-22 rule (ssh-cidr) on moto's EC2: added at launch, removed at teardown

const ec2 = (): EC2Client => new EC2Client(ec2ClientConfig({ endpoint: motoEndpoint() }));

async function group(): Promise<string> {
  const out = await ec2().send(
    new CreateSecurityGroupCommand({
      GroupName: `mp-ssh-${randomBytes(4).toString('hex')}`,
      Description: 'ssh-cidr test',
      TagSpecifications: [
        { ResourceType: 'security-group', Tags: [{ Key: 'model-pipeline', Value: 'true' }] },
      ],
    }),
  );
  return out.GroupId!;
}

async function port22(groupId: string): Promise<SecurityGroupRule[]> {
  const out = await ec2().send(
    new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [groupId] }] }),
  );
  return (out.SecurityGroupRules ?? []).filter((r) => !r.IsEgress && r.FromPort === 22);
}

const cidrsOf = async (groupId: string): Promise<string[]> =>
  (await port22(groupId)).map((r) => r.CidrIpv4 ?? r.CidrIpv6 ?? '').sort();

let imageId: string;
beforeAll(async () => {
  const img = await ec2().send(
    new RegisterImageCommand({
      Name: `mp-ssh-${randomBytes(4).toString('hex')}`,
      RootDeviceName: '/dev/sda1',
    }),
  );
  imageId = img.ImageId!;
});

function request(groupId: string, sshCidrs?: string[]): LaunchRequest {
  return {
    imageId,
    instanceTypes: ['t3.micro'],
    subnetIds: [],
    securityGroupIds: [groupId],
    spot: false,
    rootVolumeGiB: 8,
    maxRuntimeSeconds: 3600,
    tags: { 'model-pipeline:model-prefix': 'ssh/1.0.0-abcdef0' },
    sshCidrs,
  };
}

const compute = (): Ec2Compute => new Ec2Compute({ endpoint: motoEndpoint(), pollMs: 10 });

describe('ssh-cidr rules on EC2 (moto)', () => {
  it('opens port 22 to the CIDR at launch, tagged with the instance, and removes it on terminate', async () => {
    const g = await group();
    const c = compute();
    const inst = await c.launch(request(g, ['198.51.100.7/32']));
    const rules = await port22(g);
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({
      IpProtocol: 'tcp',
      FromPort: 22,
      ToPort: 22,
      CidrIpv4: '198.51.100.7/32',
    });
    const tags = Object.fromEntries((rules[0].Tags ?? []).map((t) => [t.Key, t.Value]));
    expect(tags).toMatchObject({ 'model-pipeline': 'true', 'model-pipeline:instance-id': inst.id });
    expect(rules[0].Description).toContain(inst.id);
    expect(inst.tags['model-pipeline:ssh-cidr']).toBe('198.51.100.7/32');

    await c.waitUntilRunning(inst.id, 30);
    expect(await cidrsOf(g)).toEqual(['198.51.100.7/32']);
    await c.terminate(inst.id);
    expect(await port22(g)).toEqual([]);
    // twice is harmless (the post step after the finally)
    await c.terminate(inst.id);
  });

  it('without ssh-cidr the group is left alone, and a rule of the user for the same block is never removed', async () => {
    const g = await group();
    await ec2().send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: g,
        IpProtocol: 'tcp',
        FromPort: 22,
        ToPort: 22,
        CidrIp: '203.0.113.0/24',
      }),
    );
    const c = compute();
    const plain = await c.launch(request(g));
    expect(await cidrsOf(g)).toEqual(['203.0.113.0/24']);
    await c.terminate(plain.id);
    const withRule = await c.launch(request(g, ['203.0.113.0/24']));
    await c.terminate(withRule.id);
    expect(await cidrsOf(g)).toEqual(['203.0.113.0/24']);
  });

  it("a second concurrent run's rule is not removed by the first (different and same runner address)", async () => {
    const g = await group();
    const c = compute();
    const a = await c.launch(request(g, ['198.51.100.1/32']));
    const b = await c.launch(request(g, ['198.51.100.2/32']));
    expect(await cidrsOf(g)).toEqual(['198.51.100.1/32', '198.51.100.2/32']);
    await c.terminate(a.id);
    expect(await cidrsOf(g)).toEqual(['198.51.100.2/32']);

    // same address: EC2 keeps one rule (a duplicate is refused); it stays until its last user ends
    const d = await c.launch(request(g, ['198.51.100.2/32']));
    await c.waitUntilRunning(d.id, 30);
    await c.terminate(b.id);
    expect(await cidrsOf(g)).toEqual(['198.51.100.2/32']);
    await c.terminate(d.id);
    expect(await cidrsOf(g)).toEqual([]);
  });

  it('a run that removed the shared rule under another is repaired when that one is running', async () => {
    const g = await group();
    const c = compute();
    const a = await c.launch(request(g, ['198.51.100.9/32']));
    const b = await c.launch(request(g, ['198.51.100.9/32']));
    // a's teardown raced b's launch: the rule went while b was still pending
    const [rule] = await port22(g);
    await ec2().send(
      new RevokeSecurityGroupIngressCommand({
        GroupId: g,
        SecurityGroupRuleIds: [rule.SecurityGroupRuleId!],
      }),
    );
    await c.waitUntilRunning(b.id, 30);
    expect(await cidrsOf(g)).toEqual(['198.51.100.9/32']);
    await c.terminate(a.id);
    expect(await cidrsOf(g)).toEqual(['198.51.100.9/32']);
    await c.terminate(b.id);
    expect(await cidrsOf(g)).toEqual([]);
  });

  it('sweep removes the rule of an instance that ended by itself (watchdog), not a live one', async () => {
    const g = await group();
    const c = compute();
    const dead = await c.launch(request(g, ['192.0.2.10/32']));
    const live = await c.launch(request(g, ['192.0.2.11/32']));
    // the watchdog's power-off: terminated without the tool's teardown
    await ec2().send(new TerminateInstancesCommand({ InstanceIds: [dead.id] }));
    // (a sweep of another test file on the same moto may remove the dead rule first: assert only what holds)
    const dry = await c.sweepSshRules(true);
    expect(dry.filter((r) => r.startsWith(`${g}/`)).length).toBeLessThanOrEqual(1);
    expect(await cidrsOf(g)).toContain('192.0.2.11/32');
    await c.sweepSshRules(false);
    expect(await cidrsOf(g)).toEqual(['192.0.2.11/32']);
    await c.terminate(live.id);
    expect(await cidrsOf(g)).toEqual([]);
    const out = await ec2().send(new DescribeInstancesCommand({ InstanceIds: [live.id] }));
    expect(out.Reservations?.[0]?.Instances?.[0]?.State?.Name).toBe('terminated');
  });
});
