import { randomBytes } from 'node:crypto';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { aliasCommand } from '../../src/commands/alias';
import { promoteCommand } from '../../src/commands/promote';
import { listAll, readManifest, verifyModelFiles } from '../../src/commands/registry-context';
import { rotateCommand } from '../../src/commands/rotate';
import type { CommandContext, CommandDef } from '../../src/commands/types';
import type { ObjectInfo, ObjectStore, PutOptions, UploadOptions } from '../../src/core/ports';
import { aliasSchema, parseJsonAs, pointerSchema, resolveModelRef } from '../../src/core/registry';
import { resolveFor } from '../../src/runner';
import { createDeps } from '../../src/wiring';
import { TEST_AWS_ENV } from '../helpers/aws';
import { storeBackends } from '../helpers/backends';
import { TempRepo } from '../helpers/git-repo';
import { quietLogger } from '../helpers/memory-logger';
import { putModel } from '../helpers/models';

jest.setTimeout(300_000);

const ROUNDS = 25;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The real store, slowed where the race lives: every write and every delete waits a little, so the
 * window between rotate's last read and its delete is wide enough to land a promotion or alias in.
 */
class SlowStore implements ObjectStore {
  constructor(private readonly inner: ObjectStore) {}
  uri(key: string) {
    return this.inner.uri(key);
  }
  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix);
  }
  listPrefixes(prefix: string) {
    return this.inner.listPrefixes(prefix);
  }
  head(key: string) {
    return this.inner.head(key);
  }
  get(key: string) {
    return this.inner.get(key);
  }
  async put(key: string, body: Buffer | string, options?: PutOptions) {
    await sleep(Math.random() * 15);
    return this.inner.put(key, body, options);
  }
  uploadFile(key: string, path: string, options?: UploadOptions) {
    return this.inner.uploadFile(key, path, options);
  }
  stat(key: string) {
    return this.inner.stat(key);
  }
  downloadFile(key: string, path: string) {
    return this.inner.downloadFile(key, path);
  }
  async deleteMany(keys: string[]) {
    await sleep(40);
    return this.inner.deleteMany(keys);
  }
}

describe.each(storeBackends('rotrace'))('rotate racing promote and alias: %s', (_name, make) => {
  let repo: TempRepo;
  beforeAll(() => {
    repo = new TempRepo('mp-rotrace-repo-');
    repo.write('a.txt', 'main');
    repo.commit('main');
  });

  async function runOn(command: CommandDef, store: ObjectStore, inputs: Record<string, string>) {
    const env = { ...TEST_AWS_ENV, USER: 'tester' };
    const options = await resolveFor(command, {
      inputs: { backend: 'local', 'store-prefix': 'models', ...inputs },
      env,
      cwd: repo.dir,
    });
    const base = createDeps(options, { logger: quietLogger, state: new MemoryState(), env, cwd: repo.dir });
    const ctx: CommandContext = {
      options,
      deps: { ...base, store: () => store },
      signal: new AbortController().signal,
    };
    return command.run(ctx);
  }

  /** Every pointer and alias names a folder that is a whole, verified model; no folder is half there. */
  async function assertConsistent(store: ObjectStore, folders: string[]): Promise<void> {
    const referenced: string[] = [];
    for (const o of await listAll(store, 'models/_registry/environments/')) {
      const got = await store.get(o.key);
      referenced.push(parseJsonAs(pointerSchema, got!.body.toString(), o.key).prefix);
    }
    for (const o of await listAll(store, 'models/_registry/aliases/')) {
      const got = await store.get(o.key);
      referenced.push(parseJsonAs(aliasSchema, got!.body.toString(), o.key).prefix);
    }
    for (const prefix of referenced) {
      const ref = resolveModelRef(prefix, '', '');
      const objects = await listAll(store, ref.folder);
      const manifest = await readManifest(store, ref);
      expect(await verifyModelFiles(store, ref, manifest, objects)).toEqual([]);
    }
    for (const folder of folders) {
      const names = (await listAll(store, folder)).map((o) => o.key.slice(folder.length));
      if (names.length > 0) expect(names).toEqual(expect.arrayContaining(['manifest.json', 'model.zip']));
    }
    expect(await listAll(store, 'models/_registry/retiring/')).toEqual([]);
  }

  const racers: [string, (store: ObjectStore, folder: string) => Promise<unknown>][] = [
    [
      'promote',
      (store, folder) => runOn(promoteCommand, store, { 'model-prefix': folder, environment: 'development' }),
    ],
    ['alias', (store, folder) => runOn(aliasCommand, store, { 'model-prefix': folder, alias: 'candidate' })],
  ];

  it.each(racers)(
    `rotate vs %s, ${ROUNDS} rounds: nothing references a deleted folder`,
    async (_r, racer) => {
      const { store: real } = await make();
      const store = new SlowStore(real);
      const folders: string[] = [];
      const outcomes = { kept: 0, deleted: 0 };
      // the racer starts at a random point of rotate's run, which is timed round by round
      let rotateMs = 300;
      for (let round = 0; round < ROUNDS; round++) {
        // a folder rotation deletes: its commit is in no branch, grace 0, keep-per-version 0
        const folder = `models/1.0.${round}-${randomBytes(4).toString('hex').slice(0, 7)}/`;
        folders.push(folder);
        await putModel(real, folder);
        const started = Date.now();
        const rotate = runOn(rotateCommand, store, {
          'dry-run': 'false',
          'grace-days': '0',
          'keep-per-version': '0',
        }).finally(() => (rotateMs = Date.now() - started));
        await sleep(rotateMs * (0.4 + Math.random() * 0.7));
        const [rot, other] = await Promise.allSettled([rotate, racer(store, folder)]);
        if (rot.status === 'rejected') throw rot.reason;
        if (other.status === 'rejected')
          expect((other.reason as Error).message).toMatch(
            /rotate is deleting it|has no manifest\.json|does not exist|disappeared|does not match its manifest/,
          );
        await assertConsistent(real, folders);
        if ((await listAll(real, folder)).length > 0) outcomes.kept++;
        else outcomes.deleted++;
      }
      expect(outcomes.kept + outcomes.deleted).toBe(ROUNDS);
    },
  );

  it('promote and alias refuse a folder marked retiring, changing nothing', async () => {
    const { store } = await make();
    const folder = 'models/2.0.0-abcdef1/';
    await putModel(store, folder);
    await store.put(
      'models/_registry/retiring/2.0.0-abcdef1.json',
      JSON.stringify({ schemaVersion: 1, folder, run: 'rotate-1', at: '2026-01-01T00:00:00Z' }),
    );
    await expect(
      runOn(promoteCommand, store, { 'model-prefix': folder, environment: 'development' }),
    ).rejects.toThrow(
      /cannot point development at models\/2.0.0-abcdef1\/: rotate is deleting it \(run rotate-1/,
    );
    await expect(runOn(aliasCommand, store, { 'model-prefix': folder, alias: 'x' })).rejects.toThrow(
      /cannot set alias x to models\/2.0.0-abcdef1\/: rotate is deleting it/,
    );
    expect(await listAll(store, 'models/_registry/environments/')).toEqual([]);
    expect(await listAll(store, 'models/_registry/aliases/')).toEqual([]);
  });
});
