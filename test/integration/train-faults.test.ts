import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSubnetsCommand,
  EC2Client,
  ImportKeyPairCommand,
  RegisterImageCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { ec2ClientConfig } from '../../src/adapters/aws/ec2-compute';
import { AMI_VERSION_TAG } from '../../src/adapters/aws/ec2-resolve';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { listAll, readManifest, verifyModelFiles } from '../../src/commands/registry-context';
import { TAG_CI_RUN } from '../../src/core/instance-tags';
import { resolveModelRef } from '../../src/core/registry';
import { buildContext, runCommand } from '../../src/runner';
import { sweepCommand } from '../../src/commands/sweep';
import { motoEndpoint, newBucket, TEST_AWS_ENV } from '../helpers/aws';
import { buildCliBin } from '../helpers/cli-bin';
import { startDropProxy, type DropProxy } from '../helpers/drop-proxy';
import { startSshd, type Sshd } from '../helpers/sshd';
import { dataZip, MemoryLogger, trainingRepo } from '../helpers/train-fixture';

// moto gives its instances 10.x addresses: SSH always goes to the test's sshd through ssh-host 127.0.0.1.
// train runs as a CLI process and is killed with SIGKILL: no finally, no post step. The safety net is a
// sweep once the CI says the run has finished (a fake GitHub API on 127.0.0.1 says so).

jest.setTimeout(300_000);

let sshd: Sshd;
let bin: string;
let ec2Proxy: DropProxy;
let s3Proxy: DropProxy;
let github: http.Server;
let githubUrl = '';
const finishedRuns = new Set<string>();

beforeAll(async () => {
  sshd = await startSshd();
  bin = buildCliBin();
  // answers held a little, so each stage lasts long enough to be killed in
  ec2Proxy = await startDropProxy(motoEndpoint(), () => false);
  ec2Proxy.delay = (a) => (a === 'RunInstances' ? 1500 : 0);
  s3Proxy = await startDropProxy(motoEndpoint(), () => false);
  s3Proxy.delay = (a) => (a === 'PUT' ? 400 : 0);
  github = http.createServer((req, res) => {
    const id = /\/actions\/runs\/(\d+)/.exec(req.url ?? '')?.[1] ?? '';
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify(
        finishedRuns.has(id) ? { status: 'completed', conclusion: 'cancelled' } : { status: 'in_progress' },
      ),
    );
  });
  await new Promise<void>((r) => github.listen(0, '127.0.0.1', r));
  githubUrl = `http://127.0.0.1:${(github.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await sshd?.stop();
  await ec2Proxy?.close();
  await s3Proxy?.close();
  await new Promise<void>((r) => github?.close(() => r()));
});

const ec2 = (): EC2Client => new EC2Client(ec2ClientConfig({ endpoint: motoEndpoint() }));

async function liveOfRun(runTag: string): Promise<Instance[]> {
  const out = await ec2().send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: `tag:${TAG_CI_RUN}`, Values: [runTag] },
        { Name: 'instance-state-name', Values: ['pending', 'running'] },
      ],
    }),
  );
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

/** A stage: the output line after which the process is killed. */
const STAGES: [string, RegExp | 'RunInstances sent'][] = [
  // killed while moto's answer is held by the proxy: EC2 has the request, the process never sees the id
  ['after the launch request', 'RunInstances sent'],
  ['while booting', /\] wait until it runs$/],
  ['during rsync', /\] copy the repository$/],
  ['during training', /epoch 1\/3/],
  ['during upload', /\] upload the artifacts$/],
  ['before the manifest', /\] write the manifest$/],
];

/** A model to train on moto: an AMI with a version tag, a key pair for the sshd, data in a new bucket. */
async function faultSetup() {
  const runId = String(100000 + Math.floor(Math.random() * 900000));
  const run = randomBytes(4).toString('hex');
  const amiVersion = `7.${parseInt(run.slice(0, 4), 16)}.0`;
  const image = await ec2().send(
    new RegisterImageCommand({ Name: `mp-fault-${run}`, RootDeviceName: '/dev/sda1' }),
  );
  await ec2().send(
    new CreateTagsCommand({
      Resources: [image.ImageId!],
      Tags: [{ Key: AMI_VERSION_TAG, Value: amiVersion }],
    }),
  );
  const keyName = `mp-fault-${run}`;
  await ec2().send(
    new ImportKeyPairCommand({ KeyName: keyName, PublicKeyMaterial: Buffer.from(sshd.clientPublicKey) }),
  );
  const repo = trainingRepo('5.0.0');
  repo.write('Makefile', 'train:\n\tsleep 1; bash scripts/train.sh\n');
  repo.commit('slower training');
  const bucket = await newBucket('faults');
  const store = new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: motoEndpoint() });
  await store.uploadFile('raw_source_data.zip', dataZip(3));
  const prefix = `search/5.0.0-${repo.head().slice(0, 7)}/`;
  const options: Record<string, string> = {
    backend: 'aws',
    region: 'us-east-1',
    bucket,
    's3-endpoint': s3Proxy.url,
    'ec2-endpoint': ec2Proxy.url,
    'ami-version': amiVersion,
    'instance-types': 't3.micro',
    'ssh-host': '127.0.0.1',
    'ssh-port': String(sshd.port),
    'ssh-user': sshd.user,
    'ssh-host-key': sshd.hostPublicKey,
    'remote-dir': path.join(mkdtempSync(path.join(tmpdir(), 'mp-remote-')), 'repo'),
    'key-name': keyName,
    'ssh-private-key': sshd.clientPrivateKey,
    'config-path': 'search-config.toml',
  };
  return { runId, runTag: `github:acme/search:${runId}`, repo, bucket, store, prefix, options };
}

/** train through the bundled CLI, as a GitHub job of run `runId` would start it. */
function spawnTrain(options: Record<string, string | undefined>, runId: string, cwd: string) {
  const args = Object.entries(options)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `--${k}=${v}`);
  return spawn(path.join(bin, 'model-pipeline'), ['train', ...args], {
    cwd,
    env: {
      ...process.env,
      ...TEST_AWS_ENV,
      CIRCLECI: '',
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: 'acme/search',
      GITHUB_RUN_ID: runId,
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_JOB: 'train',
      GITHUB_SHA: '',
      GITHUB_REF_NAME: '',
      GITHUB_HEAD_REF: '',
      GITHUB_BASE_REF: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
}

describe('SIGKILL at every stage of train: no instance left running, no mixed model folder', () => {
  it.each(STAGES)('killed %s', async (_stage, killAt) => {
    const { runId, repo, bucket, store, prefix, options } = await faultSetup();
    const child = spawnTrain(options, runId, repo.dir);
    const lines: string[] = [];
    let killed = false;
    const done = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line);
        if (!killed && killAt instanceof RegExp && killAt.test(line.trim())) {
          killed = true;
          process.kill(-child.pid!, 'SIGKILL');
        }
      });
    }
    const seen = ec2Proxy.actions.length;
    const poll = setInterval(() => {
      if (
        killAt === 'RunInstances sent' &&
        !killed &&
        ec2Proxy.actions.slice(seen).includes('RunInstances')
      ) {
        killed = true;
        process.kill(-child.pid!, 'SIGKILL');
      }
    }, 10);
    await done;
    clearInterval(poll);
    expect({ killed, tail: killed ? [] : lines.slice(-15) }).toEqual({ killed: true, tail: [] });
    const runTag = `github:acme/search:${runId}`;

    // the safety net: a sweep once GitHub says the run is over
    const sweep = async () => {
      const ctx = await buildContext(sweepCommand, {
        command: 'sweep',
        inputs: { backend: 'aws', 'ec2-endpoint': motoEndpoint(), region: 'us-east-1', 'github-token': 't' },
        env: { ...TEST_AWS_ENV, GITHUB_API_URL: githubUrl },
        cwd: repo.dir,
        logger: new MemoryLogger(),
        state: new MemoryState(),
        signal: new AbortController().signal,
      });
      const real = ctx.deps.compute();
      // only this run's instances: the moto server is shared with other test files
      ctx.deps.compute = () => ({
        launch: (r, sg) => real.launch(r, sg),
        describe: (id) => real.describe(id),
        waitUntilRunning: (id, t, sg) => real.waitUntilRunning(id, t, sg),
        terminate: (id) => real.terminate(id),
        findByTags: (tags) => real.findByTags({ ...tags, [TAG_CI_RUN]: runTag }),
      });
      return sweepCommand.run(ctx);
    };
    // the killed run left its instance running (the request reached EC2 before the kill)
    let left: Instance[] = [];
    for (let i = 0; i < 50 && left.length === 0; i++) {
      left = await liveOfRun(runTag);
      if (left.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toHaveLength(1);
    const early = await sweep();
    expect(JSON.parse(early.outputs.terminated)).toEqual([]); // the run is still going: kept
    finishedRuns.add(runId);
    await sweep();
    expect(await liveOfRun(runTag)).toEqual([]);

    // the folder is a whole model or not a model: never a manifest over other files
    const names = (await listAll(store, prefix)).map((o) => o.key.slice(prefix.length));
    if (names.includes('manifest.json')) {
      const ref = resolveModelRef(prefix, '', '');
      const manifest = await readManifest(store, ref);
      expect(await verifyModelFiles(store, ref, manifest, await listAll(store, prefix))).toEqual([]);
    }
    const common = {
      backend: 'aws',
      region: 'us-east-1',
      bucket,
      's3-endpoint': motoEndpoint(),
      'config-path': 'search-config.toml',
    };
    const needs = await runCommand({
      command: 'needs-model',
      inputs: { ...common, force: 'true' },
      env: TEST_AWS_ENV,
      cwd: repo.dir,
      logger: new MemoryLogger(),
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
    // the killed run's lease stands until it expires: the folder shows as training by that run
    expect(needs.text).toContain(`run github:acme/search/${runId}/1/train holds the lease`);
    if (!names.includes('manifest.json')) {
      await expect(
        runCommand({
          command: 'promote',
          inputs: { ...common, 'model-prefix': prefix, environment: 'development' },
          env: TEST_AWS_ENV,
          cwd: repo.dir,
          logger: new MemoryLogger(),
          state: new MemoryState(),
          signal: new AbortController().signal,
        }),
      ).rejects.toThrow(/has no manifest\.json|does not exist/);
    }
    // fetch-model unpacks the whole model or refuses; it never takes files from a folder without a manifest
    const dest = path.join(mkdtempSync(path.join(tmpdir(), 'mp-fault-fetch-')), 'model');
    const fetched = runCommand({
      command: 'fetch-model',
      inputs: { ...common, environment: 'development', dest },
      env: TEST_AWS_ENV,
      cwd: repo.dir,
      logger: new MemoryLogger(),
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
    if (names.includes('manifest.json')) {
      await expect(fetched).resolves.toMatchObject({ outputs: { 'model-prefix': prefix } });
      expect(readFileSync(path.join(dest, 'weights.txt'), 'utf8')).toMatch(/^weights v5\.0\.0/);
    } else {
      await expect(fetched).rejects.toThrow(/no model for development/);
      expect(existsSync(dest)).toBe(false);
    }
  });
});

/** train through the bundled CLI until it exits on its own. */
async function runTrain(
  options: Record<string, string | undefined>,
  runId: string,
  cwd: string,
): Promise<{ code: number | null; lines: string[]; errors: string[] }> {
  const child = spawnTrain(options, runId, cwd);
  const lines: string[] = [];
  const errors: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
  createInterface({ input: child.stderr! }).on('line', (line) => {
    lines.push(line);
    if (/^(::error|error:)/.test(line)) errors.push(line);
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, lines, errors };
}

/** Every instance this run launched, in any state. */
async function allOfRun(runTag: string): Promise<Instance[]> {
  const out = await ec2().send(
    new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG_CI_RUN}`, Values: [runTag] }] }),
  );
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

/** The ephemeral key pair a run said it created, if EC2 still has it. */
async function ephemeralKeyLeft(lines: string[]): Promise<string[]> {
  const name = lines.map((l) => /created ephemeral key pair (\S+)/.exec(l)?.[1]).find(Boolean);
  expect(name).toBeDefined();
  const out = await ec2().send(new DescribeKeyPairsCommand({}));
  return (out.KeyPairs ?? []).map((k) => k.KeyName!).filter((k) => k === name);
}

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const CAPACITY_ERROR = (type: string) =>
  '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>InsufficientInstanceCapacity</Code>' +
  `<Message>We currently do not have sufficient ${type} capacity in the Availability Zone you requested.</Message>` +
  '</Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>';

describe('train fails on its own and leaves nothing behind (moto + sshd, bundled CLI)', () => {
  it('SSH down once the instance runs: one clear line, the instance terminated, the key pair deleted', async () => {
    const f = await faultSetup();
    const port = await closedPort();
    const r = await runTrain(
      {
        ...f.options,
        'ssh-port': String(port),
        'boot-timeout': '8s',
        // an ephemeral key pair: made for this run, so it must go with it
        'key-name': undefined,
        'ssh-private-key': undefined,
      },
      f.runId,
      f.repo.dir,
    );
    expect(r.code).toBe(1);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(new RegExp(`SSH on \\S*127\\.0\\.0\\.1:${port} not ready after 8s`));
    // the instance was running (SSH is what failed), and the run itself terminated it
    const instances = await allOfRun(f.runTag);
    expect(instances).toHaveLength(1);
    expect(r.lines.join('\n')).toContain(`terminated ${instances[0].InstanceId}`);
    expect(await liveOfRun(f.runTag)).toEqual([]);
    expect(await ephemeralKeyLeft(r.lines)).toEqual([]);
    // nothing in the folder: no upload, and the lease released
    expect(await listAll(f.store, f.prefix)).toEqual([]);
  });

  it('no capacity anywhere: tries every type in every subnet, then one clear line; 0 instances, folder untouched', async () => {
    const proxy = await startDropProxy(motoEndpoint(), () => false);
    const tokens = new Set<string>();
    proxy.answer = (action, body) => {
      if (action !== 'RunInstances') return undefined;
      tokens.add(decodeURIComponent(/(?:^|&)ClientToken=([^&]*)/.exec(body)?.[1] ?? ''));
      const type = decodeURIComponent(/(?:^|&)InstanceType=([^&]*)/.exec(body)?.[1] ?? '');
      return { status: 500, body: CAPACITY_ERROR(type) };
    };
    try {
      const f = await faultSetup();
      const subnets = await ec2().send(
        new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }),
      );
      const [a, b] = (subnets.Subnets ?? []).map((s) => s.SubnetId!);
      expect(b).toBeDefined();
      const r = await runTrain(
        {
          ...f.options,
          'ec2-endpoint': proxy.url,
          'instance-types': 't3.micro,t3.small',
          'subnet-id': `${a},${b}`,
          'key-name': undefined,
          'ssh-private-key': undefined,
        },
        f.runId,
        f.repo.dir,
      );
      expect(r.code).toBe(1);
      expect(r.errors).toHaveLength(1);
      expect(r.errors[0]).toMatch(
        new RegExp(
          `no EC2 capacity for any instance type \\(t3\\.micro on-demand in ${a}: InsufficientInstanceCapacity; ` +
            `t3\\.micro on-demand in ${b}: InsufficientInstanceCapacity; t3\\.small on-demand in ${a}: ` +
            `InsufficientInstanceCapacity; t3\\.small on-demand in ${b}: InsufficientInstanceCapacity\\)`,
        ),
      );
      // four attempts (two types in two subnets), each its own launch token
      expect(tokens.size).toBe(4);
      expect(await allOfRun(f.runTag)).toEqual([]);
      expect(await ephemeralKeyLeft(r.lines)).toEqual([]);
      expect(await listAll(f.store, f.prefix)).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});
