import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { exitCodeOf } from '../../src/core/errors';
import { parseManifest } from '../../src/core/manifest';
import { motoEndpoint, newBucket } from '../helpers/aws';
import { TempRepo } from '../helpers/git-repo';
import { startSshd, type Sshd } from '../helpers/sshd';
import { FakeCompute, keysUnder, trainWithCompute } from '../helpers/train-fixture';

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});

/** Steps over a real sshd on 127.0.0.1 with the step caches in S3 (moto). */
describe('train with [[steps]] over SSH, caches in S3', () => {
  it('runs in order, resumes after a failure from S3 caches, hits on a rerun, misses on one changed byte', async () => {
    const outside = mkdtempSync(path.join(tmpdir(), 'mp-steps-ssh-'));
    const log = path.join(outside, 'ran.log');
    const flag = path.join(outside, 'fail-b');
    const repo = new TempRepo('mp-steps-ssh-');
    repo.write('data.txt', 'abc\n');
    repo.write(
      'steps.toml',
      `version = "1.0.0"
[steps.a]
command = "echo a >> ${log} && mkdir -p o && cat data.txt > o/a.txt"
inputs = ["data.txt"]
outputs = ["o/a.txt"]
[steps.b]
command = "echo b >> ${log} && test ! -e ${flag} && tr a-z A-Z < o/a.txt > o/b.txt"
inputs = ["o/a.txt"]
outputs = ["o/b.txt"]
[steps.c]
command = "echo c >> ${log} && cp o/b.txt model.zip"
inputs = ["o/b.txt"]
outputs = ["model.zip"]
`,
    );
    repo.commit('steps');
    const bucket = await newBucket('steps');
    const store = new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: motoEndpoint() });
    const remoteDir = mkdtempSync(path.join(tmpdir(), 'mp-remote-'));
    const inputs = (sha: string): Record<string, string> => ({
      backend: 'aws',
      bucket,
      's3-endpoint': motoEndpoint(),
      'ami-id': 'ami-0123456789abcdef0',
      'ssh-user': sshd.user,
      'ssh-port': String(sshd.port),
      'ssh-host-key': sshd.hostPublicKey,
      'ssh-private-key': sshd.clientPrivateKey,
      'remote-dir': path.join(remoteDir, 'repo'),
      'boot-timeout': '30s',
      'config-path': 'steps.toml',
      'data-key': 'none',
      sha: sha.repeat(40),
      'store-prefix': 'models',
      // a rerun at another commit would otherwise reuse the model of the same inputs
      force: 'true',
    });
    const ran = (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
    const stepCaches = async (): Promise<string[]> =>
      (await keysUnder(store, 'models/_steps/')).filter((k) => k.endsWith('/step.json'));
    const manifest = async (sha7: string) => {
      const got = await store.get(`models/1.0.0-${sha7}/manifest.json`);
      return parseManifest(got!.body.toString('utf8'), 'manifest');
    };

    writeFileSync(flag, '');
    const failed = await trainWithCompute(new FakeCompute(), inputs('a'), repo.dir);
    expect(exitCodeOf(failed.error)).toBe(1);
    expect((failed.error as Error).message).toMatch(/^step b .* Not run: c\. No model was written/);
    expect(ran()).toEqual(['a', 'b']);
    expect(await keysUnder(store, 'models/1.0.0-aaaaaaa/')).toEqual([]);
    expect(await stepCaches()).toHaveLength(1);

    rmSync(flag);
    const resumed = await trainWithCompute(new FakeCompute(), inputs('a'), repo.dir);
    expect(resumed.error).toBeUndefined();
    expect(ran()).toEqual(['a', 'b', 'b', 'c']);
    expect((await manifest('aaaaaaa')).steps!.map((s) => s.cacheHit)).toEqual([true, false, false]);
    const got = await store.get('models/1.0.0-aaaaaaa/model.zip');
    expect(got!.body.toString()).toBe('ABC\n');

    const again = await trainWithCompute(new FakeCompute(), inputs('b'), repo.dir);
    expect(again.error).toBeUndefined();
    expect(ran()).toHaveLength(4);
    expect((await manifest('bbbbbbb')).steps!.map((s) => s.cacheHit)).toEqual([true, true, true]);

    repo.write('data.txt', 'abd\n');
    const changed = await trainWithCompute(new FakeCompute(), inputs('c'), repo.dir);
    expect(changed.error).toBeUndefined();
    expect(ran()).toEqual(['a', 'b', 'b', 'c', 'a', 'b', 'c']);
    expect((await manifest('ccccccc')).steps!.map((s) => s.cacheHit)).toEqual([false, false, false]);
    expect(await stepCaches()).toHaveLength(6);
  });
});
