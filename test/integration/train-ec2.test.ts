import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  EC2Client,
  ImportKeyPairCommand,
  RegisterImageCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ec2ClientConfig } from '../../src/adapters/aws/ec2-compute';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { parseManifest } from '../../src/core/manifest';
import { runCommand } from '../../src/runner';
import { motoEndpoint, newBucket } from '../helpers/aws';
import { startSshd, type Sshd } from '../helpers/sshd';
import { dataZip, MemoryLogger, trainingRepo } from '../helpers/train-fixture';
import { AMI_VERSION_TAG } from '../../src/adapters/aws/ec2-resolve';

// moto gives its instances 10.x addresses: SSH always goes to the test's sshd through ssh-host 127.0.0.1

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});

const ec2 = (): EC2Client => new EC2Client(ec2ClientConfig({ endpoint: motoEndpoint() }));

async function instance(id: string): Promise<Instance | undefined> {
  const out = await ec2().send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return out.Reservations?.[0]?.Instances?.[0];
}

async function setup() {
  const run = randomBytes(4).toString('hex');
  const amiVersion = `9.${parseInt(run.slice(0, 4), 16)}.0`;
  const image = await ec2().send(
    new RegisterImageCommand({ Name: `mp-train-${run}`, RootDeviceName: '/dev/sda1' }),
  );
  await ec2().send(
    new CreateTagsCommand({
      Resources: [image.ImageId!],
      Tags: [{ Key: AMI_VERSION_TAG, Value: amiVersion }],
    }),
  );
  const repo = trainingRepo('3.0.0');
  const bucket = await newBucket('train-ec2');
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
    'ssh-host': '127.0.0.1',
    'ssh-port': String(sshd.port),
    'ssh-user': sshd.user,
    'ssh-host-key': sshd.hostPublicKey,
    'remote-dir': path.join(mkdtempSync(path.join(tmpdir(), 'mp-remote-')), 'repo'),
    'boot-timeout': '60s',
  };
  return {
    run,
    repo,
    store,
    inputs,
    imageId: image.ImageId!,
    prefix: `search/3.0.0-${repo.head().slice(0, 7)}/`,
  };
}

async function train(cwd: string, inputs: Record<string, string>) {
  const logger = new MemoryLogger();
  const state = new MemoryState();
  try {
    const result = await runCommand({
      command: 'train',
      inputs,
      env: {},
      cwd,
      logger,
      state,
      signal: new AbortController().signal,
    });
    return { result, logger, state };
  } catch (error) {
    return { error, logger, state };
  }
}

describe('train with the real EC2 adapter (moto) and SSH to the local sshd', () => {
  it('launches from the AMI found by version, trains, stores the model and terminates the instance', async () => {
    const { run, repo, store, inputs, imageId, prefix } = await setup();
    const keyName = `mp-test-${run}`;
    await ec2().send(
      new ImportKeyPairCommand({ KeyName: keyName, PublicKeyMaterial: Buffer.from(sshd.clientPublicKey) }),
    );
    const { result, error, logger, state } = await train(repo.dir, {
      ...inputs,
      'key-name': keyName,
      'ssh-private-key': sshd.clientPrivateKey,
    });
    expect(error).toBeUndefined();
    const id = result!.outputs['instance-id'];
    expect(id).toMatch(/^i-/);
    expect(state.get('instance-id')).toBe(id);
    expect(result!.outputs['model-uri']).toBe(`s3://${inputs.bucket}/${prefix}`);
    expect(logger.lines).toContain('epoch 3/3 rows=4');

    const inst = await instance(id);
    expect(inst?.State?.Name).toBe('terminated');
    expect(inst?.ImageId).toBe(imageId);
    expect(inst?.KeyName).toBe(keyName);
    const tags = Object.fromEntries((inst?.Tags ?? []).map((t) => [t.Key, t.Value]));
    expect(tags).toMatchObject({
      'model-pipeline': 'true',
      'model-pipeline:model-prefix': prefix.replace(/\/$/, ''),
    });

    const manifest = parseManifest((await store.get(prefix + 'manifest.json'))!.body.toString(), 'manifest');
    expect(manifest.build).toMatchObject({
      backend: 'aws',
      ami: imageId,
      instanceType: 't3.micro',
      instanceId: id,
    });
  });

  it('with an ephemeral key pair the instance never accepts: terminates it and deletes the key pair', async () => {
    const { repo, store, inputs, prefix } = await setup();
    const { error, state } = await train(repo.dir, { ...inputs, 'boot-timeout': '4s' });
    expect((error as Error).message).toMatch(/SSH on .* not ready after 4s/);
    const keyName = state.get('ephemeral-key-name');
    expect(keyName).toMatch(/^model-pipeline-3\.0\.0-[0-9a-f]{7}-[0-9a-f]{8}$/);
    const keys = await ec2().send(new DescribeKeyPairsCommand({}));
    expect((keys.KeyPairs ?? []).map((k) => k.KeyName)).not.toContain(keyName);
    const id = state.get('instance-id');
    expect((await instance(id))?.State?.Name).toBe('terminated');
    expect(await store.head(prefix + 'manifest.json')).toBeUndefined();
  });
});
