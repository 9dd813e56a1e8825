import {
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DescribeSecurityGroupRulesCommand,
  EC2Client,
  ImportKeyPairCommand,
  RegisterImageCommand,
  TerminateInstancesCommand,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ec2ClientConfig, Ec2Compute } from '../../src/adapters/aws/ec2-compute';
import { AMI_VERSION_TAG } from '../../src/adapters/aws/ec2-resolve';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { trainCommand } from '../../src/commands/train';
import { createDeps } from '../../src/wiring';
import { resolveFor, runCommand } from '../../src/runner';
import { motoEndpoint, newBucket } from '../helpers/aws';
import { startSshd, type Sshd } from '../helpers/sshd';
import { buildCliBin } from '../helpers/cli-bin';
import { dataZip, MemoryLogger, trainingRepo } from '../helpers/train-fixture';

// train with ssh-cidr on moto's EC2, SSH to the local sshd; the runner's address comes from a checkip
// server on 127.0.0.1 (MODEL_PIPELINE_CHECKIP_URL), never from the internet

const RUNNER_ADDRESS = '198.51.100.77';
let sshd: Sshd;
let checkip: Server;
let checkipUrl: string;
let checkipHits = 0;
beforeAll(async () => {
  sshd = await startSshd();
  checkip = createServer((_req, res) => {
    checkipHits++;
    res.end(`${RUNNER_ADDRESS}\n`);
  });
  await new Promise<void>((r) => checkip.listen(0, '127.0.0.1', r));
  const addr = checkip.address();
  checkipUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/`;
});
afterAll(async () => {
  await sshd?.stop();
  await new Promise((r) => checkip?.close(r));
});

const ec2 = (): EC2Client => new EC2Client(ec2ClientConfig({ endpoint: motoEndpoint() }));

async function port22(groupId: string): Promise<SecurityGroupRule[]> {
  const out = await ec2().send(
    new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [groupId] }] }),
  );
  return (out.SecurityGroupRules ?? []).filter((r) => !r.IsEgress && r.FromPort === 22);
}

async function setup() {
  const run = randomBytes(4).toString('hex');
  const amiVersion = `8.${parseInt(run.slice(0, 4), 16)}.0`;
  const image = await ec2().send(
    new RegisterImageCommand({ Name: `mp-cidr-${run}`, RootDeviceName: '/dev/sda1' }),
  );
  await ec2().send(
    new CreateTagsCommand({
      Resources: [image.ImageId!],
      Tags: [{ Key: AMI_VERSION_TAG, Value: amiVersion }],
    }),
  );
  const sg = await ec2().send(
    new CreateSecurityGroupCommand({
      GroupName: `mp-cidr-${run}`,
      Description: 'training',
      TagSpecifications: [
        { ResourceType: 'security-group', Tags: [{ Key: 'model-pipeline', Value: 'true' }] },
      ],
    }),
  );
  const keyName = `mp-cidr-${run}`;
  await ec2().send(
    new ImportKeyPairCommand({ KeyName: keyName, PublicKeyMaterial: Buffer.from(sshd.clientPublicKey) }),
  );
  const repo = trainingRepo('3.1.0');
  const bucket = await newBucket('train-cidr');
  const store = new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: motoEndpoint() });
  await store.uploadFile('raw_source_data.zip', dataZip(4));
  const inputs: Record<string, string> = {
    backend: 'aws',
    region: 'us-east-1',
    bucket,
    's3-endpoint': motoEndpoint(),
    'ec2-endpoint': motoEndpoint(),
    'ami-version': amiVersion,
    'instance-types': 't3.micro',
    'security-group-id': sg.GroupId!,
    'ssh-cidr': 'auto',
    'ssh-host': '127.0.0.1',
    'ssh-port': String(sshd.port),
    'ssh-user': sshd.user,
    'ssh-host-key': sshd.hostPublicKey,
    'key-name': keyName,
    'ssh-private-key': sshd.clientPrivateKey,
    'remote-dir': path.join(mkdtempSync(path.join(tmpdir(), 'mp-remote-')), 'repo'),
    'boot-timeout': '60s',
  };
  return { repo, inputs, groupId: sg.GroupId!, store, imageId: image.ImageId! };
}

/** train, watching the group's port-22 rules while it runs. */
async function trainWatching(cwd: string, inputs: Record<string, string>, groupId: string) {
  const logger = new MemoryLogger();
  const state = new MemoryState();
  const seen = new Set<string>();
  let done = false;
  const watch = (async () => {
    while (!done) {
      for (const r of await port22(groupId)) {
        const tags = Object.fromEntries((r.Tags ?? []).map((t) => [t.Key, t.Value]));
        seen.add(`${r.CidrIpv4} ${tags['model-pipeline:instance-id'] ?? ''}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  let error: unknown;
  let outputs: Record<string, string> | undefined;
  try {
    outputs = (
      await runCommand({
        command: 'train',
        inputs,
        env: { MODEL_PIPELINE_CHECKIP_URL: checkipUrl },
        cwd,
        logger,
        state,
        signal: new AbortController().signal,
      })
    ).outputs;
  } catch (err) {
    error = err;
  } finally {
    done = true;
    await watch;
  }
  return { error, outputs, state, logger, seen: [...seen] };
}

describe('train ssh-cidr auto: port 22 open to the runner only while it trains', () => {
  it('after success: the rule (runner /32, naming the instance) existed during training and is gone', async () => {
    const { repo, inputs, groupId, store } = await setup();
    const before = checkipHits;
    const r = await trainWatching(repo.dir, { ...inputs, 'train-command': 'sleep 2 && make train' }, groupId);
    expect(r.error).toBeUndefined();
    const id = r.outputs!['instance-id'];
    expect(checkipHits).toBe(before + 1);
    expect(r.seen).toEqual([`${RUNNER_ADDRESS}/32 ${id}`]);
    expect(await port22(groupId)).toEqual([]);
    expect(await store.head(r.outputs!['model-prefix'] + 'manifest.json')).toBeDefined();
  });

  it('after a failed training command: the rule is gone too', async () => {
    const { repo, inputs, groupId } = await setup();
    const r = await trainWatching(repo.dir, { ...inputs, 'train-command': 'sleep 2; exit 4' }, groupId);
    expect((r.error as Error).message).toMatch(/exit code 4/);
    const id = r.state.get('instance-id');
    expect(r.seen).toEqual([`${RUNNER_ADDRESS}/32 ${id}`]);
    expect(await port22(groupId)).toEqual([]);
  });

  it('after the post step of a job killed while training (and after one killed mid-teardown)', async () => {
    const { repo, inputs, groupId, imageId } = await setup();
    const options = await resolveFor(trainCommand, { inputs, env: {}, cwd: repo.dir });
    const state = new MemoryState();
    const ctx = {
      options,
      deps: createDeps(options, { logger: new MemoryLogger(), state, env: {}, cwd: repo.dir }),
      signal: new AbortController().signal,
    };
    // what a killed train leaves: a running instance with its rule, and the saved instance id
    const compute = new Ec2Compute({ endpoint: motoEndpoint() });
    const launch = (sshCidrs: string[]) =>
      compute.launch({
        imageId,
        instanceTypes: ['t3.micro'],
        subnetIds: [],
        securityGroupIds: [groupId],
        spot: false,
        rootVolumeGiB: 8,
        maxRuntimeSeconds: 600,
        tags: {},
        sshCidrs,
      });
    const killed = await launch([`${RUNNER_ADDRESS}/32`]);
    expect((await port22(groupId)).map((x) => x.CidrIpv4)).toEqual([`${RUNNER_ADDRESS}/32`]);
    state.save('instance-id', killed.id);
    await trainCommand.cleanup!(ctx);
    expect(await port22(groupId)).toEqual([]);

    // killed after terminating but before removing the rule: the post step still removes it
    const half = await launch(['192.0.2.99/32']);
    await ec2().send(new TerminateInstancesCommand({ InstanceIds: [half.id] }));
    state.save('instance-id', half.id);
    await trainCommand.cleanup!(ctx);
    expect(await port22(groupId)).toEqual([]);
  });

  it('a bad ssh-cidr is one clear line, exit 2, before anything is launched', async () => {
    const { repo, inputs, groupId } = await setup();
    const r = await trainWatching(repo.dir, { ...inputs, 'ssh-cidr': '10.0.0.1/24' }, groupId);
    expect((r.error as { exitCode?: number }).exitCode).toBe(2);
    expect((r.error as Error).message).toBe(
      'ssh-cidr: "10.0.0.1/24" has host bits set; the block is 10.0.0.0/24 (write that, or the /32)',
    );
    expect(r.state.get('launch-token')).toBe('');
  });

  it('through the CLI: a bad ssh-cidr is one line on stderr, exit 2, and nothing launched', async () => {
    const { repo, inputs, groupId } = await setup();
    const bin = buildCliBin();
    const r = spawnSync(
      path.join(bin, 'model-pipeline'),
      ['train', '--backend', 'aws', '--bucket', inputs.bucket, '--ssh-cidr', 'auto,203.0.113.0/24'],
      {
        cwd: repo.dir,
        encoding: 'utf8',
        env: {
          ...process.env,
          MODEL_PIPELINE_EC2_ENDPOINT: motoEndpoint(),
          MODEL_PIPELINE_CHECKIP_URL: checkipUrl,
        },
      },
    );
    expect(r.status).toBe(2);
    expect(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => !/NodeVersionSupportWarning|node >=22|^$/.test(l)),
    ).toHaveLength(1);
    expect(r.stderr).toMatch(/ssh-cidr: `auto` stands alone/);
    expect(await port22(groupId)).toEqual([]);
  });
});
