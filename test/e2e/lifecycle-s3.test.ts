import {
  CreateTagsCommand,
  EC2Client,
  ImportKeyPairCommand,
  RegisterImageCommand,
} from '@aws-sdk/client-ec2';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ec2ClientConfig } from '../../src/adapters/aws/ec2-compute';
import { AMI_VERSION_TAG } from '../../src/adapters/aws/ec2-resolve';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { motoEndpoint, newBucket, TEST_AWS_ENV } from '../helpers/aws';
import { CLI, lifecycle } from '../helpers/lifecycle';
import { startSshd, type Sshd } from '../helpers/sshd';

// The release loop through the bundled CLI (test/helpers/lifecycle.ts) on S3, training on EC2 (both moto).
// moto gives its instances 10.x addresses: SSH always goes to the test's sshd through ssh-host 127.0.0.1
let sshd: Sshd;
// six trainings and ~60 CLI runs: about 20 s (local) and 90 s (S3 + EC2 polling) on an idle machine
jest.setTimeout(300_000);

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run bundle before the e2e tests`);
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});

describe('the release loop holds model after model (dist/cli)', () => {
  it('on S3 and EC2 (moto), training over SSH', async () => {
    const bucket = await newBucket('lifecycle');
    const run = randomBytes(4).toString('hex');
    const amiVersion = `7.${parseInt(run.slice(0, 4), 16)}.0`;
    const ec2 = new EC2Client(ec2ClientConfig({ endpoint: motoEndpoint() }));
    const image = await ec2.send(
      new RegisterImageCommand({ Name: `mp-life-${run}`, RootDeviceName: '/dev/sda1' }),
    );
    await ec2.send(
      new CreateTagsCommand({
        Resources: [image.ImageId!],
        Tags: [{ Key: AMI_VERSION_TAG, Value: amiVersion }],
      }),
    );
    const keyName = `mp-life-${run}`;
    await ec2.send(
      new ImportKeyPairCommand({ KeyName: keyName, PublicKeyMaterial: Buffer.from(sshd.clientPublicKey) }),
    );
    await lifecycle({
      name: 's3',
      args: ['--bucket', bucket, '--s3-endpoint', motoEndpoint(), '--region', 'us-east-1'],
      trainArgs: [
        '--ec2-endpoint',
        motoEndpoint(),
        '--ami-version',
        amiVersion,
        '--instance-types',
        't3.micro',
        '--key-name',
        keyName,
        '--ssh-host',
        '127.0.0.1',
        '--ssh-port',
        String(sshd.port),
        '--ssh-user',
        sshd.user,
        '--ssh-host-key',
        sshd.hostPublicKey,
        '--remote-dir',
        path.join(mkdtempSync(path.join(tmpdir(), 'mp-life-remote-')), 'repo'),
        '--boot-timeout',
        '60s',
      ],
      env: { ...TEST_AWS_ENV, MODEL_PIPELINE_SSH_PRIVATE_KEY: sshd.clientPrivateKey },
      store: () => new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: motoEndpoint() }),
    });
  });
});
