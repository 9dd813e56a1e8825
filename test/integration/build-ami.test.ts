import {
  CreateImageCommand,
  CreateTagsCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
  ImportKeyPairCommand,
  RegisterImageCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { Ec2ImageRegistry } from '../../src/adapters/aws/ec2-images';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { buildAmiCommand } from '../../src/commands/build-ami';
import { exitCodeOf, PipelineError, UserError } from '../../src/core/errors';
import { PackerImageBuilder } from '../../src/adapters/packer/packer-cli';
import type { ImageBuilder } from '../../src/core/ports';
import { buildContext, runCommand } from '../../src/runner';
import { motoEndpoint } from '../helpers/aws';
import { TempRepo } from '../helpers/git-repo';
import { startSshd, type Sshd } from '../helpers/sshd';
import { MemoryLogger } from '../helpers/memory-logger';
import { packer16Copy } from '../helpers/packer-template';

// the packer here is 1.6.6: it runs the shipped template without the newer-only pieces (packer16Copy),
// and its amazon builder tags the AMI after creation, so build-ami's fallback tagging is what runs here
const REGION = 'us-east-1';

/** A builder that must not be used: proves packer did not run. */
class UnusedBuilder implements ImageBuilder {
  calls = 0;
  async build(): Promise<{ imageId: string }> {
    this.calls++;
    throw new Error('packer must not run here');
  }
  async validate(): Promise<void> {
    this.calls++;
    throw new Error('packer must not run here');
  }
}

function ec2(region = REGION): EC2Client {
  return new EC2Client({ region, endpoint: motoEndpoint() });
}

/** A fresh version per test: every test file shares one moto. */
function uniqueVersion(): string {
  return `${randomInt(100, 100000)}.${randomInt(0, 1000)}.0`;
}

async function imagesTagged(version: string, region = REGION) {
  const out = await ec2(region).send(
    new DescribeImagesCommand({
      Owners: ['self'],
      Filters: [{ Name: 'tag:model-pipeline:ami-version', Values: [version] }],
    }),
  );
  return out.Images ?? [];
}

/** Builder instances of a version that are not terminated. */
async function liveBuilders(version: string): Promise<string[]> {
  const out = await ec2().send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: 'tag:model-pipeline:ami-version', Values: [version] },
        { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
      ],
    }),
  );
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!);
}

/** Repo whose last commit changes (or not) .packer/ami-version.txt. */
function repoWith(version: string, changeVersionFile: boolean): TempRepo {
  const repo = new TempRepo('mp-ami-');
  packer16Copy(path.join(repo.dir, '.packer'));
  repo.write('.packer/ami-version.txt', changeVersionFile ? '0.0.1\n' : `${version}\n`);
  repo.commit('first');
  if (changeVersionFile) repo.write('.packer/ami-version.txt', `${version}\n`);
  repo.write('README.md', 'touch\n');
  repo.commit('second');
  return repo;
}

// packer reaches only 127.0.0.1: any other HTTP(S) request goes to a dead local proxy; no instance metadata
const ENV: Record<string, string | undefined> = {
  ...process.env,
  GITHUB_ACTIONS: undefined,
  CIRCLECI: undefined,
  HTTP_PROXY: 'http://127.0.0.1:9',
  HTTPS_PROXY: 'http://127.0.0.1:9',
  NO_PROXY: '127.0.0.1',
  AWS_EC2_METADATA_DISABLED: 'true',
  MODEL_PIPELINE_AMI_VERSION: undefined,
};

function baseInputs(extra: Record<string, string> = {}): Record<string, string> {
  return { region: REGION, 'ec2-endpoint': motoEndpoint(), ...extra };
}

describe('build-ami decisions (no packer)', () => {
  async function runWithUnusedBuilder(repo: TempRepo, inputs: Record<string, string>) {
    const logger = new MemoryLogger();
    const ctx = await buildContext(buildAmiCommand, {
      command: 'build-ami',
      inputs,
      env: ENV,
      cwd: repo.dir,
      logger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
    const builder = new UnusedBuilder();
    ctx.deps.imageBuilder = () => builder;
    const result = await buildAmiCommand.run(ctx);
    return { result, builder, logger };
  }

  test('version file unchanged against the base: not built, packer not run', async () => {
    const version = uniqueVersion();
    const repo = repoWith(version, false);
    const { result, builder } = await runWithUnusedBuilder(repo, baseInputs());
    expect(result.outputs).toMatchObject({ built: 'false', 'ami-version': version, 'ami-id': '' });
    expect(result.outputs.reason).toMatch(/\.packer\/ami-version\.txt did not change against .*; set force/);
    expect(builder.calls).toBe(0);
  });

  test('an AMI already tagged with the version: not built even when forced, its id is the output', async () => {
    const version = uniqueVersion();
    const repo = repoWith(version, true);
    const client = ec2();
    const reg = await client.send(
      new RegisterImageCommand({ Name: `existing-${version}`, RootDeviceName: '/dev/sda1' }),
    );
    await client.send(
      new CreateTagsCommand({
        Resources: [reg.ImageId!],
        Tags: [
          { Key: 'model-pipeline', Value: 'true' },
          { Key: 'model-pipeline:ami-version', Value: version },
        ],
      }),
    );
    const { result, builder } = await runWithUnusedBuilder(repo, baseInputs({ force: 'true' }));
    expect(result.outputs).toMatchObject({ built: 'false', 'ami-id': reg.ImageId, 'ami-version': version });
    expect(result.outputs.reason).toMatch(new RegExp(`already exists \\(${reg.ImageId}\\)`));
    expect(builder.calls).toBe(0);
  });

  test('a bad version in the file is a UserError naming the file', async () => {
    const repo = new TempRepo('mp-ami-');
    repo.write('.packer/ami-version.txt', 'latest\n').commit('bad');
    const err = await runWithUnusedBuilder(repo, baseInputs()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(
      /AMI version file \.packer\/ami-version\.txt must be a semantic version/,
    );
  });

  test('no version file and no input: a UserError that says what to set', async () => {
    const repo = new TempRepo('mp-ami-');
    repo.write('x', 'y').commit('c');
    const err = await runWithUnusedBuilder(repo, baseInputs()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(
      /AMI version file \.packer\/ami-version\.txt not found.*set the ami-version input, or the ami-version-file input/,
    );
  });
});

/**
 * What the amazon plugin >= 1.3 does with the shipped template: the builder's run_tags (image_tags merged
 * with the marker and version) go into the CreateImage call itself. Images are made on moto.
 */
class TagAtCreationBuilder implements ImageBuilder {
  variables: Record<string, string> = {};
  async validate(): Promise<void> {}
  async build(request: { variables: Record<string, string> }): Promise<{ imageId: string }> {
    this.variables = request.variables;
    const v = request.variables;
    const run = await ec2().send(
      new RunInstancesCommand({ ImageId: v.base_ami, MinCount: 1, MaxCount: 1, InstanceType: 't3.micro' }),
    );
    const id = run.Instances![0].InstanceId!;
    const runTags = {
      ...(JSON.parse(v.image_tags) as Record<string, string>),
      'model-pipeline': 'true',
      'model-pipeline:ami-version': v.ami_version,
    };
    const Tags = Object.entries(runTags).map(([Key, Value]) => ({ Key, Value }));
    const img = await ec2().send(
      new CreateImageCommand({
        InstanceId: id,
        Name: `model-pipeline-training-${v.ami_version}-1`,
        // moto answers 500 to a snapshot TagSpecification in CreateImage; the image's is what build-ami reads
        TagSpecifications: [{ ResourceType: 'image', Tags }],
      }),
    );
    await ec2().send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    return { imageId: img.ImageId! };
  }
}

describe('build-ami with a builder that tags in CreateImage (amazon plugin >= 1.3)', () => {
  test('passes image_tags and the root device to the template, and tags nothing after creation', async () => {
    const version = uniqueVersion();
    const repo = repoWith(version, true);
    const logger = new MemoryLogger();
    const ctx = await buildContext(buildAmiCommand, {
      command: 'build-ami',
      inputs: baseInputs({
        'base-ami-name-pattern': 'ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*',
        'base-ami-owner': 'amazon',
        'packer-instance-type': 't3.micro',
      }),
      env: ENV,
      cwd: repo.dir,
      logger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
    const builder = new TagAtCreationBuilder();
    ctx.deps.imageBuilder = () => builder;
    const registry = ctx.deps.images() as Ec2ImageRegistry;
    const sent: string[] = [];
    const realSend = registry.client.send.bind(registry.client) as (
      c: unknown,
      o?: unknown,
    ) => Promise<unknown>;
    registry.client.send = (async (command: unknown, options?: unknown) => {
      sent.push((command as object).constructor.name);
      return realSend(command, options);
    }) as EC2Client['send'];
    ctx.deps.images = () => registry;

    const result = await buildAmiCommand.run(ctx);
    expect(result.outputs.built).toBe('true');
    expect(builder.variables).toMatchObject({ root_device_name: '/dev/sda1', ami_version: version });
    expect(JSON.parse(builder.variables.image_tags)).toMatchObject({
      'model-pipeline': 'true',
      'model-pipeline:ami-version': version,
      'model-pipeline:git-sha': repo.head(),
    });
    expect(sent).not.toContain('CreateTagsCommand');
    expect(logger.lines.join('\n')).not.toMatch(/came without/);
    const [img] = await imagesTagged(version);
    const tags = Object.fromEntries((img.Tags ?? []).map((t) => [t.Key, t.Value]));
    expect(tags).toMatchObject({ 'model-pipeline': 'true', 'model-pipeline:base-ami': 'ami-785db401' });
  });
});

describe('build-ami with real packer against moto and a local sshd', () => {
  let sshd: Sshd;
  let work: string;
  let keyName: string;

  beforeAll(async () => {
    sshd = await startSshd();
    work = mkdtempSync(path.join(tmpdir(), 'mp-packer-'));
    keyName = `packer-test-${randomBytes(4).toString('hex')}`;
    await ec2().send(
      new ImportKeyPairCommand({
        KeyName: keyName,
        PublicKeyMaterial: readFileSync(path.join(sshd.dir, 'client_key.pub')),
      }),
    );
  });

  afterAll(async () => {
    await sshd?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Template variables that point the builder's SSH at the local sshd instead of moto's fake address. */
  function packerVars(script: string): string {
    return [
      'skip_aws_validation=true',
      `ssh_host=${sshd.host}`,
      `ssh_port=${sshd.port}`,
      `ssh_username=${sshd.user}`,
      `ssh_keypair_name=${keyName}`,
      `ssh_private_key_file=${path.join(sshd.dir, 'client_key')}`,
      `provision_script=${script}`,
    ].join('\n');
  }

  function inputs(script: string, extra: Record<string, string> = {}): Record<string, string> {
    return baseInputs({
      // moto's stock Ubuntu AMIs have EBS roots, as the amazon-ebs builder requires
      'base-ami-name-pattern': 'ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*',
      'base-ami-owner': 'amazon',
      'packer-instance-type': 't3.micro',
      'packer-vars': packerVars(script),
      ...extra,
    });
  }

  test('builds, tags, shares and copies the AMI; a rerun does not build again', async () => {
    const version = uniqueVersion();
    const repo = repoWith(version, true);
    const marker = path.join(work, `provisioned-${version}`);
    const script = path.join(work, 'ok.sh');
    writeFileSync(
      script,
      `#!/bin/bash\nset -eu\necho "provisioning AMI $AMI_VERSION"\necho "$AMI_VERSION" > ${marker}\n`,
    );
    const logger = new MemoryLogger();
    const result = await runCommand({
      command: 'build-ami',
      inputs: inputs(script, {
        'share-accounts': '111122223333',
        'copy-regions': 'us-west-2',
        'packer-ssh-cidr': '127.0.0.1/32',
      }),
      env: ENV,
      cwd: repo.dir,
      logger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });

    expect(result.outputs).toMatchObject({ built: 'true', 'ami-version': version });
    const amiId = result.outputs['ami-id'];
    expect(amiId).toMatch(/^ami-[0-9a-f]+$/);
    // the provision script ran over SSH, with the template's environment
    expect(readFileSync(marker, 'utf8').trim()).toBe(version);
    expect(logger.lines.join('\n')).toMatch(/provisioning AMI /);
    expect(logger.lines.join('\n')).toMatch(/Connected to SSH!/);
    // port 22 of Packer's temporary group only from the given address, not the internet
    expect(logger.lines.join('\n')).toMatch(/Authorizing access to port \d+ from \[127\.0\.0\.1\/32\]/);
    expect(logger.lines.join('\n')).not.toMatch(/0\.0\.0\.0\/0/);

    const [img] = (await ec2().send(new DescribeImagesCommand({ ImageIds: [amiId] }))).Images ?? [];
    const tags = Object.fromEntries((img.Tags ?? []).map((t) => [t.Key, t.Value]));
    expect(tags).toMatchObject({
      'model-pipeline': 'true',
      'model-pipeline:ami-version': version,
      'model-pipeline:git-sha': repo.head(),
      'model-pipeline:base-ami': 'ami-785db401',
    });
    expect(Date.parse(tags['model-pipeline:built-at']!)).not.toBeNaN();
    // Packer 1.6's builder tags after creation: build-ami says the shipped CI policy would refuse that
    expect(logger.lines.join('\n')).toMatch(
      /came without model-pipeline, .*tagging it after creation \(the CI policy in docs\/iam\.md refuses this/,
    );
    expect(img.Name).toMatch(
      new RegExp(`^model-pipeline-training-${version.replace(/\./g, '\\.')}-\\d{14}$`),
    );

    const perms = await ec2().send(
      new DescribeImageAttributeCommand({ ImageId: amiId, Attribute: 'launchPermission' }),
    );
    expect(perms.LaunchPermissions?.map((p) => p.UserId)).toContain('111122223333');

    const copies = JSON.parse(result.outputs['ami-copies']) as Record<string, string>;
    expect(Object.keys(copies)).toEqual(['us-west-2']);
    const copied = await imagesTagged(version, 'us-west-2');
    expect(copied.map((i) => i.ImageId)).toEqual([copies['us-west-2']]);

    // the builder instance was terminated by packer
    expect(await liveBuilders(version)).toEqual([]);

    const again = await runCommand({
      command: 'build-ami',
      inputs: inputs(path.join(work, 'missing.sh')),
      env: ENV,
      cwd: repo.dir,
      logger: new MemoryLogger(),
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
    expect(again.outputs).toMatchObject({ built: 'false', 'ami-id': amiId });
  });

  test('an abort sends packer SIGINT: it stops, terminates its builder and the build rejects', async () => {
    const version = uniqueVersion();
    const dir = packer16Copy(mkdtempSync(path.join(work, 'tpl-')));
    const script = path.join(work, 'slow.sh');
    writeFileSync(script, '#!/bin/bash\necho "slow provisioning started"\nsleep 20\n');
    const logger = new MemoryLogger();
    const builder = new PackerImageBuilder({
      binary: async () => 'packer',
      cwd: work,
      env: ENV,
      logger,
    });
    const abort = new AbortController();
    const variables: Record<string, string> = {
      ami_version: version,
      base_ami: 'ami-785db401',
      region: REGION,
      instance_type: 't3.micro',
      ec2_endpoint: motoEndpoint(),
      // moto wants a size in a block device mapping (AWS takes the snapshot's); build-ami passes the base's
      root_volume_size: '15',
    };
    for (const line of packerVars(script).split('\n')) {
      const i = line.indexOf('=');
      variables[line.slice(0, i)] = line.slice(i + 1);
    }
    const err = await builder
      .build({
        templateDir: dir,
        variables,
        signal: abort.signal,
        onOutput: (line) => {
          if (line.includes('slow provisioning started')) abort.abort(new Error('test abort'));
        },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as Error).message).toMatch(/packer build was interrupted/);
    expect(logger.lines.join('\n')).toMatch(/Cancelling build after receiving interrupt/);
    expect(logger.lines.join('\n')).toMatch(/Terminating the source AWS instance/);
    expect(await liveBuilders(version)).toEqual([]);
    expect(await imagesTagged(version)).toEqual([]);
  });

  test('a failing provision script fails the command cleanly: exit 1, no AMI for the version', async () => {
    const version = uniqueVersion();
    const repo = repoWith(version, true);
    const script = path.join(work, 'fail.sh');
    writeFileSync(script, '#!/bin/bash\necho "about to fail"\nexit 3\n');
    const logger = new MemoryLogger();
    const err = await runCommand({
      command: 'build-ami',
      inputs: inputs(script),
      env: ENV,
      cwd: repo.dir,
      logger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineError);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(
      /^packer build failed \(exit 1\): amazon-ebs\.training: .*exit status.*3/,
    );
    expect(logger.lines.join('\n')).toMatch(/about to fail/);
    expect(await imagesTagged(version)).toEqual([]);
    expect(existsSync(path.join(work, `provisioned-${version}`))).toBe(false);
    expect(await liveBuilders(version)).toEqual([]);
  });
});
