import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FsObjectStore } from '../../src/adapters/local/fs-store';
import { LocalShell } from '../../src/adapters/local/local-shell';
import {
  artifactTransfer,
  fromInstance,
  viaRunner,
  type ArtifactPlan,
  type TransferScope,
  type Uploaded,
} from '../../src/commands/train-transfer';
import { UserError } from '../../src/core/errors';
import type { DownloadOptions } from '../../src/core/ports';
import { trainArtifacts } from '../../src/core/train';
import { MemoryLogger } from '../helpers/memory-logger';

// Both strategies against a real folder "instance" (LocalShell) and a folder store. The instance's aws CLI
// is a small script that copies to and from the store's file:// URIs, or fails when AWS_FAIL is set.

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function fakeAws(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'mp-aws-'));
  const file = path.join(dir, 'aws');
  writeFileSync(
    file,
    [
      '#!/usr/bin/env bash',
      'set -eu',
      'if [ -n "${AWS_FAIL:-}" ]; then echo "upload failed: AccessDenied" >&2; exit 1; fi',
      'args=("$@"); src="${args[-2]}"; dest="${args[-1]}"',
      'src="${src#file://}"; dest="${dest#file://}"',
      'mkdir -p "$(dirname "$dest")"; cp "$src" "$dest"',
      '',
    ].join('\n'),
  );
  chmodSync(file, 0o755);
  return file;
}

function setup(outputs: Record<string, string>) {
  const root = mkdtempSync(path.join(tmpdir(), 'mp-host-'));
  for (const [name, text] of Object.entries(outputs)) {
    mkdirSync(path.dirname(path.join(root, 'repo', name)), { recursive: true });
    writeFileSync(path.join(root, 'repo', name), text);
  }
  const store = new FsObjectStore(mkdtempSync(path.join(tmpdir(), 'mp-store-')));
  const log = new MemoryLogger();
  const scope: TransferScope = {
    store,
    shell: new LocalShell(root),
    instanceId: 'local-000000000001',
    remoteDir: 'repo',
    work: mkdtempSync(path.join(tmpdir(), 'mp-work-')),
    signal: new AbortController().signal,
    log,
  };
  const plan: ArtifactPlan = {
    artifacts: trainArtifacts({ outputDir: 'out', metricsFile: 'out/metrics.json' }),
    metricsPath: 'out/metrics.json',
    prefix: 'search/1.0.0-abcdef0/',
  };
  return { root, store, log, scope, plan };
}

const OUTPUTS = { 'out/model.zip': 'the weights', 'out/metrics.json': '{"passed": true}' };

describe('artifact transfer through the runner', () => {
  it('stores what the training wrote, skips a missing optional file, hands back the metrics copy', async () => {
    const { store, log, scope, plan } = setup(OUTPUTS);
    const uploads: Uploaded[] = [];
    const { metricsLocal } = await viaRunner.collect(scope, plan, uploads);
    expect(uploads.map((u) => [u.key, u.entry.name, u.entry.size, u.entry.sha256])).toEqual([
      [`${plan.prefix}model.zip`, 'model.zip', 11, sha256('the weights')],
      [`${plan.prefix}metrics.json`, 'metrics.json', 16, sha256('{"passed": true}')],
    ]);
    expect((await store.get(`${plan.prefix}model.zip`))?.body.toString()).toBe('the weights');
    expect(readFileSync(metricsLocal!, 'utf8')).toBe('{"passed": true}');
    expect(log.text()).toContain('no out/embeddings.zip: skipped');
  });

  it('a missing model.zip fails the run and uploads nothing', async () => {
    const { scope, plan } = setup({ 'out/metrics.json': '{}' });
    const uploads: Uploaded[] = [];
    await expect(viaRunner.collect(scope, plan, uploads)).rejects.toThrow(
      'the training command succeeded but left no out/model.zip (in repo on local-000000000001); it must write model.zip',
    );
    expect(uploads).toEqual([]);
  });

  it('brings the data object to the host and records its sha256 and size', async () => {
    const { root, store, scope } = setup({});
    await store.put('raw_source_data.zip', 'rows');
    const record = await viaRunner.pushInput(scope, 'raw_source_data.zip', 'repo/raw_source_data.zip');
    expect(record).toEqual({ key: 'raw_source_data.zip', sha256: sha256('rows'), size: 4 });
    expect(readFileSync(path.join(root, 'repo/raw_source_data.zip'), 'utf8')).toBe('rows');
  });

  it("takes the data object's sha256 from the download's own read, not from a second read of the file", async () => {
    const { store, scope } = setup({});
    await store.put('raw_source_data.zip', 'rows');
    const asked: (DownloadOptions | undefined)[] = [];
    const download = store.downloadFile.bind(store);
    const spied = Object.assign(Object.create(store) as FsObjectStore, {
      downloadFile: (key: string, dest: string, options?: DownloadOptions) => {
        asked.push(options);
        return download(key, dest, options);
      },
    });
    const record = await viaRunner.pushInput({ ...scope, store: spied }, 'raw_source_data.zip', 'repo/d.zip');
    expect(asked).toEqual([{ sha256: true }]);
    expect(record.sha256).toBe(sha256('rows'));
  });
});

describe('artifact transfer from the instance', () => {
  it('the instance stores the model itself, the metrics still come through the runner, in artifact order', async () => {
    const { store, scope, plan } = setup(OUTPUTS);
    const uploads: Uploaded[] = [];
    const transfer = fromInstance({ aws: fakeAws(), timeoutSeconds: 60 });
    const { metricsLocal } = await transfer.collect(scope, plan, uploads);
    expect(uploads.map((u) => [u.entry.name, u.entry.size, u.entry.sha256])).toEqual([
      ['model.zip', 11, sha256('the weights')],
      ['metrics.json', 16, sha256('{"passed": true}')],
    ]);
    // what the store reported right after the instance's upload, for promote's check
    expect(uploads[0].entry.stored).toBeDefined();
    expect((await store.get(`${plan.prefix}model.zip`))?.body.toString()).toBe('the weights');
    expect(readFileSync(metricsLocal!, 'utf8')).toBe('{"passed": true}');
  });

  it('a failed upload on the instance fails the run, the key still listed so the caller removes it', async () => {
    const { scope, plan, log } = setup(OUTPUTS);
    const uploads: Uploaded[] = [];
    const transfer = fromInstance({ aws: `AWS_FAIL=1 ${fakeAws()}`, timeoutSeconds: 60 });
    await expect(transfer.collect(scope, plan, uploads)).rejects.toThrow(
      /the instance could not upload model\.zip to file:\/\/\S+ \(exit 1\): it needs the aws CLI/,
    );
    expect(uploads.map((u) => u.key)).toContain(`${plan.prefix}model.zip`);
    expect(log.text()).toContain('upload failed: AccessDenied');
  });

  it('the instance downloads the data object and reports its sha256 and size', async () => {
    const { root, store, scope } = setup({});
    await store.put('raw_source_data.zip', 'rows');
    const transfer = fromInstance({ aws: fakeAws(), timeoutSeconds: 60 });
    const record = await transfer.pushInput(scope, 'raw_source_data.zip', 'repo/raw_source_data.zip');
    expect(record).toEqual({ key: 'raw_source_data.zip', sha256: sha256('rows'), size: 4 });
    expect(readFileSync(path.join(root, 'repo/raw_source_data.zip'), 'utf8')).toBe('rows');
  });

  it('is refused before anything launches when the store is not S3', () => {
    const { store } = setup({});
    expect(() => artifactTransfer('instance', store, { aws: 'aws', timeoutSeconds: 60 })).toThrow(UserError);
    expect(artifactTransfer('runner', store, { aws: 'aws', timeoutSeconds: 60 })).toBe(viaRunner);
  });
});
