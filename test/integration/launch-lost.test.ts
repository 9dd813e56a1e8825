import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  EC2Client,
  ImportKeyPairCommand,
  RegisterImageCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ec2ClientConfig, Ec2Compute } from '../../src/adapters/aws/ec2-compute';
import { AMI_VERSION_TAG } from '../../src/adapters/aws/ec2-resolve';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { trainCommand } from '../../src/commands/train';
import type { CommandContext } from '../../src/commands/types';
import { TAG_CI_ATTEMPT, TAG_CI_JOB, TAG_CI_RUN, TAG_LAUNCH_TOKEN } from '../../src/core/instance-tags';
import { resolveFor } from '../../src/runner';
import { createDeps } from '../../src/wiring';
import { motoEndpoint, newBucket } from '../helpers/aws';
import { startDropProxy, type DropProxy } from '../helpers/drop-proxy';
import { startSshd, type Sshd } from '../helpers/sshd';
import { dataZip, MemoryLogger, trainingRepo } from '../helpers/train-fixture';

// moto gives its instances 10.x addresses: SSH always goes to the test's sshd through ssh-host 127.0.0.1

jest.setTimeout(120_000);

let sshd: Sshd;
let proxy: DropProxy | undefined;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const ec2 = (): EC2Client => new EC2Client(ec2ClientConfig({ endpoint: motoEndpoint() }));

async function byToken(token: string): Promise<Instance[]> {
  const out = await ec2().send(
    new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG_LAUNCH_TOKEN}`, Values: [token] }] }),
  );
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}
const live = (xs: Instance[]) => xs.filter((i) => ['pending', 'running'].includes(i.State?.Name ?? ''));
const tagsOf = (i: Instance) => Object.fromEntries((i.Tags ?? []).map((t) => [t.Key!, t.Value!]));

async function image(): Promise<{ imageId: string; amiVersion: string }> {
  const run = randomBytes(4).toString('hex');
  const amiVersion = `8.${parseInt(run.slice(0, 4), 16)}.0`;
  const img = await ec2().send(
    new RegisterImageCommand({ Name: `mp-lost-${run}`, RootDeviceName: '/dev/sda1' }),
  );
  await ec2().send(
    new CreateTagsCommand({ Resources: [img.ImageId!], Tags: [{ Key: AMI_VERSION_TAG, Value: amiVersion }] }),
  );
  return { imageId: img.ImageId!, amiVersion };
}

const GITHUB_ENV = {
  GITHUB_ACTIONS: 'true',
  GITHUB_REPOSITORY: 'acme/search',
  GITHUB_RUN_ID: '4242',
  GITHUB_RUN_ATTEMPT: '3',
  GITHUB_JOB: 'train',
};

/** train with the real wiring; ec2-endpoint goes through the proxy; the post step runs on a direct endpoint. */
async function trainThrough(endpoint: string) {
  const { amiVersion } = await image();
  const repo = trainingRepo('4.0.0');
  const bucket = await newBucket('lost');
  const store = new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: motoEndpoint() });
  await store.uploadFile('raw_source_data.zip', dataZip(3));
  const keyName = `mp-lost-${randomBytes(4).toString('hex')}`;
  await ec2().send(
    new ImportKeyPairCommand({ KeyName: keyName, PublicKeyMaterial: Buffer.from(sshd.clientPublicKey) }),
  );
  const inputs: Record<string, string> = {
    backend: 'aws',
    region: 'us-east-1',
    bucket,
    's3-endpoint': motoEndpoint(),
    'ec2-endpoint': endpoint,
    'ami-version': amiVersion,
    'instance-types': 't3.micro',
    'ssh-host': '127.0.0.1',
    'ssh-port': String(sshd.port),
    'ssh-user': sshd.user,
    'ssh-host-key': sshd.hostPublicKey,
    'remote-dir': path.join(mkdtempSync(path.join(tmpdir(), 'mp-remote-')), 'repo'),
    'boot-timeout': '20s',
    'key-name': keyName,
    'ssh-private-key': sshd.clientPrivateKey,
  };
  const state = new MemoryState();
  const logger = new MemoryLogger();
  const context = async (over: Record<string, string>): Promise<CommandContext> => {
    const options = await resolveFor(trainCommand, {
      inputs: { ...inputs, ...over },
      env: GITHUB_ENV,
      cwd: repo.dir,
    });
    return {
      options,
      deps: createDeps(options, { logger, state, env: GITHUB_ENV, cwd: repo.dir }),
      signal: new AbortController().signal,
    };
  };
  let error: unknown;
  let outputs: Record<string, string> | undefined;
  try {
    outputs = (await trainCommand.run(await context({}))).outputs;
  } catch (err) {
    error = err;
  }
  const postStep = async () => trainCommand.cleanup!(await context({ 'ec2-endpoint': motoEndpoint() }));
  return { error, outputs, state, logger, postStep };
}

describe('a lost RunInstances answer leaks no instance', () => {
  it('Ec2Compute finds the instance by its launch token when the answer is dropped', async () => {
    const { imageId } = await image();
    proxy = await startDropProxy(motoEndpoint(), (a) => a === 'RunInstances');
    const client = new EC2Client({ ...ec2ClientConfig({ endpoint: proxy.url }), maxAttempts: 1 });
    const log: string[] = [];
    const compute = new Ec2Compute({ client, log: (m) => log.push(m) });
    const token = `t${randomBytes(8).toString('hex')}`;
    const info = await compute.launch({
      imageId,
      instanceTypes: ['t3.micro'],
      subnetIds: [],
      securityGroupIds: [],
      spot: false,
      rootVolumeGiB: 10,
      maxRuntimeSeconds: 600,
      tags: { Name: 'lost answer' },
      clientToken: token,
    });
    expect(proxy.actions.filter((a) => a === 'RunInstances')).toHaveLength(1);
    expect(log.join('\n')).toMatch(/RunInstances failed without an EC2 answer/);
    const found = live(await byToken(token));
    expect(found.map((i) => i.InstanceId)).toEqual([info.id]);
    await compute.terminate(info.id);
  });

  it('train: every answer to RunInstances dropped (with SDK retries), the run still owns, trains on and terminates its instance', async () => {
    proxy = await startDropProxy(motoEndpoint(), (a) => a === 'RunInstances');
    const { error, outputs, state } = await trainThrough(proxy.url);
    expect(error).toBeUndefined();
    const token = state.get('launch-token');
    expect(token).toMatch(/^[0-9a-f]{24}$/);
    expect(state.get('instance-id')).toBe(outputs!['instance-id']);
    const all = await byToken(token);
    // moto does not deduplicate by ClientToken as EC2 does: each SDK retry started one more instance
    expect(all.length).toBeGreaterThanOrEqual(1);
    expect(live(all)).toEqual([]);
    expect(tagsOf(all[0])).toMatchObject({
      [TAG_CI_RUN]: 'github:acme/search:4242',
      [TAG_CI_ATTEMPT]: '3',
      [TAG_CI_JOB]: 'train',
      [TAG_LAUNCH_TOKEN]: token,
    });
  });

  it('train: EC2 unreachable right after accepting the launch; the post step terminates it by token', async () => {
    let accepted = false;
    proxy = await startDropProxy(motoEndpoint(), (a) => {
      if (a === 'RunInstances') accepted = true;
      return accepted; // from the launch on, no answer comes back
    });
    const { error, state, postStep } = await trainThrough(proxy.url);
    expect(error).toBeDefined();
    expect(state.get('instance-id')).toBe('');
    const token = state.get('launch-token');
    expect(live(await byToken(token)).length).toBeGreaterThanOrEqual(1);
    await postStep();
    expect(live(await byToken(token))).toEqual([]);
  });
});
