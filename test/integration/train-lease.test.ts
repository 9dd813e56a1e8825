import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FsObjectStore } from '../../src/adapters/local/fs-store';
import { LocalCompute } from '../../src/adapters/local/local-compute';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { needsModelCommand } from '../../src/commands/needs-model';
import { readManifest, verifyModelFiles, listFolder } from '../../src/commands/registry-context';
import { statusCommand } from '../../src/commands/status';
import { trainCommand } from '../../src/commands/train';
import type { CommandContext, CommandDef, CommandResult } from '../../src/commands/types';
import { leaseKey } from '../../src/core/lease';
import type { ObjectStore } from '../../src/core/ports';
import { resolveModelRef } from '../../src/core/registry';
import { resolveFor } from '../../src/runner';
import { createDeps } from '../../src/wiring';
import { LocalHostSessions } from '../../src/adapters/local/local-host-session';
import { storeBackends } from '../helpers/backends';
import { dataZip, keysUnder, MemoryLogger, trainingRepo } from '../helpers/train-fixture';

jest.setTimeout(120_000);

interface Outcome {
  result?: CommandResult;
  error?: unknown;
  logger: MemoryLogger;
}

/** A command on the local backend (local processes as the instance) against the given store. */
async function runOn(
  command: CommandDef,
  store: ObjectStore,
  cwd: string,
  inputs: Record<string, string>,
  env: Record<string, string> = {},
  logger = new MemoryLogger(),
): Promise<Outcome> {
  const options = await resolveFor(command, { inputs: { backend: 'local', ...inputs }, env, cwd });
  const instances = mkdtempSync(path.join(tmpdir(), 'mp-lease-instances-'));
  const base = createDeps(options, { logger, state: new MemoryState(), env, cwd });
  const compute = new LocalCompute(instances);
  const ctx: CommandContext = {
    options,
    deps: {
      ...base,
      store: () => store,
      compute: () => compute,
      hosts: () => new LocalHostSessions({ compute: () => compute, state: base.state, logger }),
    },
    signal: new AbortController().signal,
  };
  try {
    return { result: await command.run(ctx), logger };
  } catch (error) {
    return { error, logger };
  }
}

/** The folder is a complete model whose files are exactly what its manifest lists, or it is empty. */
async function consistent(store: ObjectStore, prefix: string): Promise<'complete' | 'empty'> {
  const keys = await keysUnder(store, prefix);
  if (keys.length === 0) return 'empty';
  const ref = resolveModelRef(prefix, '', '');
  const manifest = await readManifest(store, ref);
  expect(await verifyModelFiles(store, ref, manifest, await listFolder(store, ref))).toEqual([]);
  expect(keys.sort()).toEqual(
    manifest.files
      .map((f) => f.name)
      .concat('manifest.json')
      .sort(),
  );
  return 'complete';
}

async function eventually(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not reached');
}

describe.each(storeBackends('lease'))('train holds a lease on its model folder: %s', (_name, make) => {
  async function setup() {
    const { store } = await make();
    const repo = trainingRepo('1.0.0');
    await store.uploadFile('raw_source_data.zip', dataZip(7));
    const prefix = `search/1.0.0-${repo.head().slice(0, 7)}/`;
    return { store, repo, prefix };
  }

  it('a second run while the first trains says who trains and leaves the first run alone', async () => {
    const { store, repo, prefix } = await setup();
    // the first run holds the folder while its training command sleeps; a file of it is already there
    const firstLog = new MemoryLogger();
    const first = runOn(
      trainCommand,
      store,
      repo.dir,
      { 'train-command': 'sleep 3 && make train' },
      {},
      firstLog,
    );
    await eventually(async () => (await store.head(leaseKey(prefix))) !== undefined);
    // past its own clearing of the folder (right after the lease; on a slow machine the file below, put
    // before it, was removed by the first run itself as a leftover): its data is on the host
    await eventually(async () => Promise.resolve(firstLog.text().includes('copied to the instance')));
    await store.put(prefix + 'in-flight.bin', 'bytes of the first run');

    const second = await runOn(
      trainCommand,
      store,
      repo.dir,
      {},
      {
        GITHUB_ACTIONS: 'true',
        GITHUB_REPOSITORY: 'acme/search',
        GITHUB_RUN_ID: '77',
        GITHUB_RUN_ATTEMPT: '2',
        GITHUB_JOB: 'train',
      },
    );
    expect((second.error as Error).message).toMatch(
      new RegExp(`^another run is training ${prefix.replace(/\//g, '\\/')} \\(run local:`),
    );
    // nothing of the first run's was touched
    expect(await store.get(prefix + 'in-flight.bin')).toBeDefined();

    // needs-model and status show the folder as training meanwhile
    const needs = await runOn(needsModelCommand, store, repo.dir, { 'config-path': 'search-config.toml' });
    expect(needs.result!.text).toMatch(/needs a model \(training\) \(new-model\): training: run local:/);
    const status = await runOn(statusCommand, store, repo.dir, {});
    expect(status.result!.text).toMatch(/training \(run local:/);

    await store.deleteMany([prefix + 'in-flight.bin']);
    const done = await first;
    expect(done.error).toBeUndefined();
    expect(await consistent(store, prefix)).toBe('complete');
    expect(await store.head(leaseKey(prefix))).toBeUndefined();
  });

  it.each([2, 5])('%i trains of one model at once: one model, no mixed folder', async (n) => {
    const { store, repo, prefix } = await setup();
    const runs = await Promise.all(Array.from({ length: n }, () => runOn(trainCommand, store, repo.dir, {})));
    const won = runs.filter((r) => r.result);
    expect(won).toHaveLength(1);
    for (const r of runs.filter((x) => x.error))
      expect((r.error as Error).message).toMatch(
        /^another run is training|already complete|was completed by another run/,
      );
    expect(await consistent(store, prefix)).toBe('complete');
    expect(await store.head(leaseKey(prefix))).toBeUndefined();
  });

  it('takes over an expired lease and removes the dead run’s leftovers', async () => {
    const { store, repo, prefix } = await setup();
    const past = new Date(Date.now() - 60_000).toISOString();
    await store.put(
      leaseKey(prefix),
      JSON.stringify({
        schemaVersion: 1,
        prefix,
        owner: 'dead0000',
        run: 'github:acme/search/1/1/train',
        acquiredAt: past,
        heartbeatAt: past,
        expiresAt: past,
      }),
    );
    await store.put(prefix + 'model.zip', 'half a model of the killed run');
    const r = await runOn(trainCommand, store, repo.dir, {});
    expect(r.error).toBeUndefined();
    expect(r.logger.lines.join('\n')).toMatch(
      /taking over the expired lease .*run github:acme\/search\/1\/1\/train/,
    );
    expect(await consistent(store, prefix)).toBe('complete');
    expect(await store.head(leaseKey(prefix))).toBeUndefined();
  });

  it('a failed run removes its uploads and its lease; the next run trains', async () => {
    const { store, repo, prefix } = await setup();
    const failed = await runOn(trainCommand, store, repo.dir, {
      'train-command': 'make train && false',
    });
    expect(failed.error).toBeDefined();
    expect(await consistent(store, prefix)).toBe('empty');
    expect(await store.head(leaseKey(prefix))).toBeUndefined();
    const ok = await runOn(trainCommand, store, repo.dir, {});
    expect(ok.error).toBeUndefined();
    expect(await consistent(store, prefix)).toBe('complete');
  });
});

describe('the lease on the folder store', () => {
  it('never lets a live lease be taken', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-lease-'));
    const store = new FsObjectStore(dir);
    const { acquireFolderLease } = await import('../../src/commands/folder-lease');
    const clock = { now: () => new Date(), sleep: () => new Promise<void>(() => undefined) };
    const log = new MemoryLogger();
    const a = await acquireFolderLease(store, clock, log, 'm/1.0.0-abcdef1/', 'run-a');
    await expect(acquireFolderLease(store, clock, log, 'm/1.0.0-abcdef1/', 'run-b')).rejects.toThrow(
      /another run is training m\/1.0.0-abcdef1\/ \(run run-a/,
    );
    await a.release();
    const b = await acquireFolderLease(store, clock, log, 'm/1.0.0-abcdef1/', 'run-b');
    await b.release();
    expect(await store.head(leaseKey('m/1.0.0-abcdef1/'))).toBeUndefined();
  });

  it('a run whose lease was taken over learns it at the next heartbeat and leaves the new lease alone', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-lease-'));
    const store = new FsObjectStore(dir);
    const { acquireFolderLease } = await import('../../src/commands/folder-lease');
    const { systemClock } = await import('../../src/adapters/system/clock');
    const log = new MemoryLogger();
    const folder = 'm/1.0.0-abcdef1/';
    const a = await acquireFolderLease(store, systemClock, log, folder, 'run-a', { heartbeatMs: 20 });
    const taken = JSON.stringify({
      ...JSON.parse((await store.get(leaseKey(folder)))!.body.toString()),
      owner: 'b',
      run: 'run-b',
    });
    await store.put(leaseKey(folder), taken);
    await eventually(async () => a.lost.aborted, 5000);
    expect((a.lost.reason as Error).message).toMatch(/lost its lease on m\/1.0.0-abcdef1\/ to run run-b/);
    await expect(a.confirm()).rejects.toThrow(/lost its lease/);
    await a.release();
    expect((await store.get(leaseKey(folder)))!.body.toString()).toBe(taken);
  });
});
