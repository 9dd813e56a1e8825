import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { MemoryState } from '../../src/adapters/system/console-logger';
import type { Git } from '../../src/core/ports';
import { rotateCommand } from '../../src/commands/rotate';
import { buildContext } from '../../src/runner';
import { MemoryStore } from '../helpers/memory-store';
import { quietLogger } from '../helpers/memory-logger';

/** Branches main and feature; commits whose sha7 starts with 'f' are on feature, all others are gone. */
const fakeGit: Git = {
  revParse: async (r) => r,
  hasCommit: async (r) => r === 'main' || r === 'feature' || /^[0-9a-f]{7}$/.test(r),
  showFile: async () => undefined,
  objectHash: async () => undefined,
  mergeBase: async (a) => a,
  changedFiles: async () => [],
  currentBranch: async () => 'main',
  liveBranches: async () => ['feature', 'main'],
  isAncestor: async (commit, ref) => ref === 'feature' && commit.startsWith('f'),
  defaultBranch: async () => 'main',
};

describe('rotate at scale', () => {
  it('plans and deletes over 100k objects with paginated listing and batched deletes', async () => {
    const store = new MemoryStore();
    const old = new Date('2020-01-01T00:00:00Z');
    const doomed = new Set<string>();
    const protectedFolders = new Set<string>();
    // 25,000 folders x 4 objects = 100,000 objects
    for (let i = 0; i < 25_000; i++) {
      const hex = i.toString(16).padStart(6, '0');
      const kind = i % 5;
      const sha7 = (kind === 3 ? 'f' : 'a') + hex;
      const folder = `models/1.${i % 50}.0-${sha7}/`;
      store.load(folder + 'model.zip', 'zip', old);
      store.load(folder + 'manifest.json', '{}', old);
      store.load(folder + 'development', '', old);
      store.load(
        folder + (kind === 1 ? 'staging' : kind === 2 ? 'production' : 'benchmark_results.json'),
        '',
        old,
      );
      if (kind === 1 || kind === 2 || kind === 3) protectedFolders.add(folder);
      else doomed.add(folder);
    }
    store.load(
      'models/_registry/environments/development.json',
      JSON.stringify({
        schemaVersion: 1,
        environment: 'development',
        prefix: 'models/1.0.0-a000000/',
        seq: 1,
        record: {
          schemaVersion: 1,
          seq: 1,
          action: 'promote',
          environment: 'development',
          prefix: 'models/1.0.0-a000000/',
          at: old.toISOString(),
        },
      }),
      old,
    );
    doomed.delete('models/1.0.0-a000000/');
    protectedFolders.add('models/1.0.0-a000000/');
    store.load('models/README', 'not a model', old);
    expect(store.objects.size).toBe(100_002);

    const ctx = await buildContext(rotateCommand, {
      command: 'rotate',
      inputs: {
        backend: 'local',
        'local-store': mkdtempSync(path.join(tmpdir(), 'mp-scale-')),
        'store-prefix': 'models',
        'grace-days': '7',
        'keep-per-version': '0',
        'dry-run': 'false',
      },
      env: {},
      cwd: mkdtempSync(path.join(tmpdir(), 'mp-scale-cwd-')),
      logger: quietLogger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
    ctx.deps.store = () => store;
    ctx.deps.git = fakeGit;
    const r = await rotateCommand.run(ctx);

    expect(Number(r.outputs['delete-count'])).toBe(doomed.size);
    expect(Number(r.outputs['deleted-objects'])).toBe(doomed.size * 4);
    expect(store.listPages).toBeGreaterThanOrEqual(100);
    expect(Math.max(...store.deleteBatches)).toBeLessThanOrEqual(1000);
    for (const f of protectedFolders) expect(store.objects.has(f + 'model.zip')).toBe(true);
    for (const f of doomed) expect(store.objects.has(f + 'manifest.json')).toBe(false);
    expect(store.objects.has('models/README')).toBe(true);
    expect(store.objects.has('models/_registry/environments/development.json')).toBe(true);
    expect(store.objects.size).toBe(100_002 - doomed.size * 4);
  });
});
