import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { HostKeyMismatchError, SshShell } from '../../src/adapters/ssh/ssh-shell';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { trainCommand } from '../../src/commands/train';
import { exitCodeOf } from '../../src/core/errors';
import { fingerprintOf } from '../../src/core/host-keys';
import { compareStored } from '../../src/core/gates';
import { parseManifest } from '../../src/core/manifest';
import { resolveFor } from '../../src/runner';
import { createDeps, sshHostSessions } from '../../src/wiring';
import { motoEndpoint, newBucket } from '../helpers/aws';
import { freePort } from '../helpers/moto';
import { otherHostKey, startSshd, type Sshd } from '../helpers/sshd';
import {
  dataZip,
  keysUnder,
  FakeCompute,
  MemoryLogger,
  trainingRepo,
  trainWithCompute,
} from '../helpers/train-fixture';
import { alive } from '../helpers/process';
import { formatBytes } from '../../src/core/progress';

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});

async function setup() {
  const repo = trainingRepo('2.1.0');
  const bucket = await newBucket('train');
  const store = new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: motoEndpoint() });
  await store.uploadFile('raw_source_data.zip', dataZip(11));
  const remoteDir = mkdtempSync(path.join(tmpdir(), 'mp-remote-'));
  const inputs: Record<string, string> = {
    backend: 'aws',
    bucket,
    's3-endpoint': motoEndpoint(),
    'ami-id': 'ami-0123456789abcdef0',
    'instance-types': 'g5.xlarge',
    'ssh-user': sshd.user,
    'ssh-port': String(sshd.port),
    'ssh-host-key': sshd.hostPublicKey,
    'ssh-private-key': sshd.clientPrivateKey,
    'remote-dir': path.join(remoteDir, 'repo'),
    'boot-timeout': '30s',
  };
  return { repo, store, inputs, remoteDir, prefix: `search/2.1.0-${repo.head().slice(0, 7)}/` };
}

describe('train over SSH (real sshd on 127.0.0.1, S3 on moto, fake Compute)', () => {
  it('copies the code and data, trains, uploads the artifacts and the manifest, and terminates', async () => {
    const { repo, store, inputs, prefix } = await setup();
    const compute = new FakeCompute();
    const run = await trainWithCompute(compute, inputs, repo.dir);
    expect(run.error).toBeUndefined();
    const id = compute.launched.length === 1 ? run.result!.outputs['instance-id'] : 'none';
    expect(compute.terminated).toEqual([id]);
    expect(run.state.get('instance-id')).toBe(id);
    expect(compute.launched[0]).toMatchObject({
      imageId: 'ami-0123456789abcdef0',
      instanceTypes: ['g5.xlarge'],
      maxRuntimeSeconds: 6 * 3600,
      tags: expect.objectContaining({ 'model-pipeline:model-prefix': prefix.replace(/\/$/, '') }),
    });
    expect(run.logger.lines).toEqual(expect.arrayContaining(['epoch 3/3 rows=11', 'done']));
    expect(run.logger.masked).toContain(sshd.clientPrivateKey.trim());
    expect(run.logger.text()).not.toContain('PRIVATE KEY');

    expect(run.result!.outputs['model-uri']).toBe(`s3://${inputs.bucket}/${prefix}`);
    expect(await keysUnder(store, prefix)).toEqual([
      'benchmark_results.xml',
      'manifest.json',
      'metrics.json',
      'model.zip',
      'search-config.toml',
    ]);
    const manifest = parseManifest((await store.get(prefix + 'manifest.json'))!.body.toString(), 'manifest');
    const model = (await store.get(prefix + 'model.zip'))!.body;
    expect(manifest.files.find((f) => f.name === 'model.zip')).toMatchObject({
      name: 'model.zip',
      size: model.length,
      sha256: createHash('sha256').update(model).digest('hex'),
    });
    const recorded = manifest.files.find((f) => f.name === 'model.zip')!;
    // what the store reported at upload, so promote can check it with a HEAD
    expect(recorded.stored).toBeDefined();
    expect(
      compareStored(
        'model.zip',
        { ...recorded.stored, size: recorded.size },
        await store.stat(prefix + 'model.zip'),
      ),
    ).toEqual({ verdict: 'same' });
    expect(manifest.build).toMatchObject({
      backend: 'aws',
      ami: 'ami-0123456789abcdef0',
      instanceType: 'g5.xlarge',
      instanceId: id,
    });
  });

  // the aws CLI plays the instance's; moto's fake credentials stand in for an instance profile
  const awsCli = (() => {
    try {
      return execFileSync('bash', ['-c', 'pyenv which aws 2>/dev/null || command -v aws'], {
        encoding: 'utf8',
      }).trim();
    } catch {
      return '';
    }
  })();
  (awsCli ? it : it.skip)(
    'with transfer instance, the instance downloads the data and uploads the model itself',
    async () => {
      const { repo, store, inputs, prefix } = await setup();
      const compute = new FakeCompute();
      const run = await trainWithCompute(
        compute,
        {
          ...inputs,
          transfer: 'instance',
          'instance-aws-command': `env AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 ${awsCli}`,
        },
        repo.dir,
      );
      expect(run.error).toBeUndefined();
      expect(run.logger.lines).toEqual(
        expect.arrayContaining([
          `raw_source_data.zip (${formatBytes((await store.head('raw_source_data.zip'))!.size)}) downloaded by the instance`,
          'epoch 3/3 rows=11',
        ]),
      );
      expect(run.logger.text()).toMatch(/the instance uploaded model\.zip \([\d.]+ (B|KiB|MiB)\)/);
      expect(await keysUnder(store, prefix)).toEqual([
        'benchmark_results.xml',
        'manifest.json',
        'metrics.json',
        'model.zip',
        'search-config.toml',
      ]);
      const manifest = parseManifest(
        (await store.get(prefix + 'manifest.json'))!.body.toString(),
        'manifest',
      );
      const model = (await store.get(prefix + 'model.zip'))!.body;
      expect(manifest.files.find((f) => f.name === 'model.zip')).toMatchObject({
        name: 'model.zip',
        size: model.length,
        sha256: createHash('sha256').update(model).digest('hex'),
      });
      const recorded = manifest.files.find((f) => f.name === 'model.zip')!;
      // what the store reported at upload, so promote can check it with a HEAD
      expect(recorded.stored).toBeDefined();
      expect(
        compareStored(
          'model.zip',
          { ...recorded.stored, size: recorded.size },
          await store.stat(prefix + 'model.zip'),
        ),
      ).toEqual({ verdict: 'same' });
      expect(manifest.inputs?.[0].sha256).toBe(
        createHash('sha256')
          .update((await store.get('raw_source_data.zip'))!.body)
          .digest('hex'),
      );
      expect(compute.live()).toEqual([]);
    },
  );

  it('trusts the host by its SHA256 fingerprint, and refuses a host whose key does not match', async () => {
    const logger = new MemoryLogger();
    const byFingerprint = new SshShell({
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      privateKey: sshd.clientPrivateKey,
      hostKeys: { keys: [], fingerprints: [fingerprintOf(sshd.hostPublicKey)] },
      logger,
    });
    try {
      await byFingerprint.waitReady(20);
      const lines: string[] = [];
      const r = await byFingerprint.exec('echo "hello from $(whoami)"; exit 4', {
        onOutput: (l) => lines.push(l),
      });
      expect(r.exitCode).toBe(4);
      expect(lines).toEqual([`hello from ${sshd.user}`]);
    } finally {
      await byFingerprint.close();
    }

    const stranger = otherHostKey();
    for (const hostKeys of [
      { keys: [stranger], fingerprints: [] },
      { keys: [], fingerprints: [fingerprintOf(stranger)] },
    ]) {
      const shell = new SshShell({
        host: sshd.host,
        port: sshd.port,
        user: sshd.user,
        privateKey: sshd.clientPrivateKey,
        hostKeys,
        logger,
      });
      try {
        await expect(shell.waitReady(20)).rejects.toBeInstanceOf(HostKeyMismatchError);
      } finally {
        await shell.close();
      }
    }
  });

  it('terminates and writes nothing when the host key does not match', async () => {
    const { repo, store, inputs, prefix } = await setup();
    const compute = new FakeCompute();
    const run = await trainWithCompute(compute, { ...inputs, 'ssh-host-key': otherHostKey() }, repo.dir);
    expect((run.error as Error).message).toMatch(/host key .* does not match.*refusing to connect/);
    expect(compute.terminated).toHaveLength(1);
    expect(compute.live()).toEqual([]);
    expect(await keysUnder(store, prefix)).toEqual([]);
  });

  it('fails with exit 1, terminates and writes no manifest when the training command fails', async () => {
    const { repo, store, inputs, prefix } = await setup();
    const compute = new FakeCompute();
    const run = await trainWithCompute(
      compute,
      { ...inputs, 'train-command': 'TRAIN_FAIL=1 make train' },
      repo.dir,
    );
    expect(exitCodeOf(run.error)).toBe(1);
    expect((run.error as Error).message).toMatch(/failed with exit code 2/);
    expect(run.logger.lines).toContain('diverged');
    expect(compute.live()).toEqual([]);
    expect(compute.terminated).toHaveLength(1);
    expect(await keysUnder(store, prefix)).toEqual([]);
  });

  it('terminates when SSH never comes up', async () => {
    const { repo, inputs } = await setup();
    const compute = new FakeCompute();
    const closedPort = await freePort();
    const run = await trainWithCompute(
      compute,
      { ...inputs, 'ssh-port': String(closedPort), 'boot-timeout': '3s' },
      repo.dir,
    );
    expect(exitCodeOf(run.error)).toBe(1);
    expect((run.error as Error).message).toMatch(new RegExp(`SSH on .*:${closedPort} not ready after 3s`));
    expect(compute.terminated).toHaveLength(1);
    expect(compute.live()).toEqual([]);
  });

  it('kills the remote training and terminates when aborted mid-run', async () => {
    const { repo, store, inputs, prefix, remoteDir } = await setup();
    const compute = new FakeCompute();
    const pidFile = path.join(remoteDir, 'train.pid');
    const controller = new AbortController();
    const logger = new MemoryLogger();
    logger.onLine = (line) => {
      if (line === 'training-started') controller.abort(new Error('received SIGTERM'));
    };
    const run = await trainWithCompute(
      compute,
      { ...inputs, 'train-command': `make slow PID_FILE=${pidFile}` },
      repo.dir,
      {
        signal: controller.signal,
        logger,
      },
    );
    expect((run.error as Error).message).toMatch(
      /train interrupted \(received SIGTERM\).*terminated; no model was written/,
    );
    expect(compute.terminated).toHaveLength(1);
    expect(await keysUnder(store, prefix)).toEqual([]);
    // the sleep on the "instance" dies with the connection instead of running on
    const pid = Number(readFileSync(pidFile, 'utf8'));
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      gone = !alive(pid);
      if (!gone) await new Promise((r) => setTimeout(r, 100));
    }
    expect(gone).toBe(true);
  });

  it('the post-step cleanup terminates an instance the run could not', async () => {
    const { repo, inputs } = await setup();
    class FlakyTerminate extends FakeCompute {
      failures = 1;
      override async terminate(id: string): Promise<void> {
        if (this.failures-- > 0) throw new Error('connection reset');
        return super.terminate(id);
      }
    }
    const compute = new FlakyTerminate();
    const run = await trainWithCompute(compute, inputs, repo.dir);
    // the model was trained, but a leaked instance fails the step
    expect((run.error as Error).message).toMatch(/could not terminate instance i-fake\d+: connection reset/);
    expect(compute.live()).toHaveLength(1);

    const state = new MemoryState();
    state.save('instance-id', compute.launched.length ? (await compute.findByTags({}))[0].id : '');
    const options = await resolveFor(trainCommand, { inputs, env: {}, cwd: repo.dir });
    const logger = new MemoryLogger();
    const deps = createDeps(options, { logger, state, env: {}, cwd: repo.dir });
    await trainCommand.cleanup!({
      options,
      deps: { ...deps, hosts: () => sshHostSessions(options, () => compute, { logger, state }) },
      signal: new AbortController().signal,
    });
    expect(compute.live()).toEqual([]);
    expect(logger.text()).toMatch(/still running: terminating it/);
  });
});
