import { MemoryState } from '../../src/adapters/system/console-logger';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { rotateCommand } from '../../src/commands/rotate';
import { buildContext, runCommand } from '../../src/runner';

const DAY = 24 * 3600 * 1000;
import { TEST_AWS_ENV } from '../helpers/aws';
import { TempRepo } from '../helpers/git-repo';
import { putModel, snapshot } from '../helpers/models';
import { storeBackends, type StoreBackend } from '../helpers/backends';
import { quietLogger } from '../helpers/memory-logger';

const backends = storeBackends('rotate');

describe.each(backends)('rotate: %s', (_name, make) => {
  let b: StoreBackend;
  let repo: TempRepo;
  const sha: Record<string, string> = {};
  const folder = (version: string, commit: string) => `models/${version}-${commit.slice(0, 7)}/`;

  const run = (command: string, inputs: Record<string, string> = {}) =>
    runCommand({
      command,
      inputs: { ...b.inputs, 'store-prefix': 'models', ...inputs },
      env: { ...TEST_AWS_ENV, USER: 'tester' },
      cwd: repo.dir,
      logger: quietLogger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });

  beforeAll(() => {
    repo = new TempRepo('mp-rot-repo-');
    repo.write('a.txt', 'main');
    sha.main = repo.commit('main');
    repo.checkout('-b', 'feature-live');
    repo.write('b.txt', 'live');
    sha.live = repo.commit('live work');
    repo.checkout('main');
    repo.checkout('-b', 'feature-gone');
    repo.write('c.txt', 'gone');
    sha.gone = repo.commit('abandoned');
    repo.checkout('main');
    repo.git('branch', '-D', 'feature-gone');
    repo.checkout('-b', 'feature-merged');
    repo.write('d.txt', 'merged');
    sha.merged = repo.commit('merged work');
    repo.checkout('main');
    repo.git('merge', '-q', '--no-ff', '-m', 'merge', 'feature-merged');
  });

  beforeEach(async () => {
    b = await make();
    await putModel(b.store, folder('1.0.0', sha.gone), { markers: ['development'] });
    await putModel(b.store, folder('1.0.0', sha.merged), { markers: ['development'] });
    await putModel(b.store, folder('1.0.0', sha.live), { markers: ['development'] });
    await putModel(b.store, folder('0.9.0', sha.main), {
      markers: ['development', 'staging'],
      inputs: [{ key: b.store.uri('models/0.8.0-dddddd1/model.zip') }, { key: 's3://elsewhere/x' }],
    });
    await putModel(b.store, 'models/0.8.0-dddddd1/', { markers: ['development'] });
    await putModel(b.store, 'models/1.1.0-eeeeee1/');
    await run('promote', { 'model-prefix': 'models/1.1.0-eeeeee1/', environment: 'development' });
    await putModel(b.store, 'models/1.2.0-ffffff1/', { noManifest: true });
    for (const k of [
      'models/notes/readme.txt',
      'models/1.0-abcdef0/model.zip',
      'models/latest/model.zip',
      'elsewhere.txt',
    ])
      await b.store.put(k, 'keep me');
  });

  it('plans by default (dry run) and deletes nothing', async () => {
    const before = await snapshot(b.store);
    const r = await run('rotate', { 'grace-days': '0', 'keep-per-version': '0' });
    expect(r.outputs['dry-run']).toBe('true');
    expect(JSON.parse(r.outputs['deleted-prefixes']).sort()).toEqual(
      [folder('1.0.0', sha.gone), folder('1.0.0', sha.merged), 'models/1.2.0-ffffff1/'].sort(),
    );
    const line = (f: string) => r.text!.split('\n').find((l) => l.includes(f)) ?? '';
    // a deleted branch and a merged (still existing) branch both count as gone
    expect(line(folder('1.0.0', sha.gone))).toMatch(
      /^delete .*only reached development; commit is on no live branch/,
    );
    expect(line(folder('1.0.0', sha.merged))).toMatch(
      /^delete .*only reached development; commit is on no live branch/,
    );
    expect(line('models/1.2.0-ffffff1/')).toMatch(
      /^delete .*never promoted; commit is not in the repository/,
    );
    expect(r.text).toMatch(/keep\s+models\/1.0.0-.*commit is on live branch feature-live/);
    expect(r.text).toMatch(
      /keep\s+models\/0.8.0-dddddd1\/.*referenced by the manifest of kept models\/0.9.0-/,
    );
    expect(r.text).toMatch(/keep\s+models\/1.1.0-eeeeee1\/.*current development model/);
    expect(r.text).toMatch(/would delete 3 model folders/);
    expect(await snapshot(b.store)).toEqual(before);
  });

  it('with dry-run false deletes exactly the plan and nothing else', async () => {
    const before = await snapshot(b.store);
    const doomed = [folder('1.0.0', sha.gone), folder('1.0.0', sha.merged), 'models/1.2.0-ffffff1/'];
    const r = await run('rotate', { 'grace-days': '0', 'keep-per-version': '0', 'dry-run': 'false' });
    expect(r.outputs['delete-count']).toBe('3');
    expect(Number(r.outputs['deleted-objects'])).toBe(
      before.filter((l) => doomed.some((d) => l.startsWith(d))).length,
    );
    expect(await snapshot(b.store)).toEqual(before.filter((l) => !doomed.some((d) => l.startsWith(d))));
    // a second run finds nothing more to do
    const again = await run('rotate', { 'grace-days': '0', 'keep-per-version': '0', 'dry-run': 'false' });
    expect(again.outputs['delete-count']).toBe('0');
  });

  it('an empty store (prefix) says so instead of printing an empty table', async () => {
    const r = await run('rotate', { 'store-prefix': 'nothing-here' });
    expect(r.outputs['delete-count']).toBe('0');
    expect(r.text).toMatch(
      /^no model folders in the store\n\nrotate \(dry run\): would delete 0 model folders/,
    );
  });

  it('the grace period and keep-per-version keep young and newest models', async () => {
    const young = await run('rotate', { 'grace-days': '30', 'keep-per-version': '0' });
    expect(young.outputs['delete-count']).toBe('0');
    const newest = await run('rotate', { 'grace-days': '0', 'keep-per-version': '5' });
    expect(newest.outputs['delete-count']).toBe('0');
  });

  it('keeps an aliased folder, which download --alias still finds afterwards (defect 4)', async () => {
    const gone = folder('1.0.0', sha.gone);
    await run('alias', { alias: 'golden', 'model-prefix': gone, reason: 'baseline' });
    const r = await run('rotate', { 'grace-days': '0', 'keep-per-version': '0', 'dry-run': 'false' });
    expect(JSON.parse(r.outputs['deleted-prefixes'])).not.toContain(gone);
    const line = r.text!.split('\n').find((l) => l.includes(gone)) ?? '';
    expect(line).toMatch(/^keep .*alias golden points at it/);
    expect(r.text).toMatch(/^action\s+model folder\s+folder size\s+created\s+kept because\s+deleted because/);
    const dest = mkdtempSync(path.join(tmpdir(), 'mp-rot-dl-'));
    const dl = await run('download', { alias: 'golden', dest });
    expect(dl.outputs['model-prefix']).toBe(gone);
  });

  it('keeps a folder with a deployment record within the grace period (defect 4)', async () => {
    const merged = folder('1.0.0', sha.merged);
    const gone = folder('1.0.0', sha.gone);
    // ten days from now everything above is 10 days old; a record of 8 days from now is within 5 days
    const later = new Date(Date.now() + 10 * DAY);
    const deployedAt = new Date(Date.now() + 8 * DAY);
    const oldAt = new Date(Date.now() + 2 * DAY);
    const record = (prefix: string, at: Date) =>
      JSON.stringify({
        schemaVersion: 1,
        environment: 'development',
        prefix,
        version: '1.0.0',
        modelSha256: 'a'.repeat(64),
        at: at.toISOString(),
      });
    const key = (at: Date, id: string) =>
      `models/_registry/deployments/development/${at
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.(\d{3})Z$/, '$1Z')}-${id}.json`;
    await b.store.put(key(deployedAt, 'aaaaaaaa'), record(merged, deployedAt));
    await b.store.put(key(oldAt, 'bbbbbbbb'), record(gone, oldAt));
    const ctx = await buildContext(rotateCommand, {
      command: 'rotate',
      inputs: { ...b.inputs, 'store-prefix': 'models', 'grace-days': '5', 'keep-per-version': '0' },
      env: { ...TEST_AWS_ENV },
      cwd: repo.dir,
      logger: quietLogger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
    ctx.deps.clock = { now: () => later, sleep: async () => undefined };
    const r = await rotateCommand.run(ctx);
    const line = (f: string) => r.text!.split('\n').find((l) => l.includes(f)) ?? '';
    expect(line(merged)).toMatch(/^keep .*deployed to development within the grace period/);
    // a deployment older than the grace period keeps nothing
    expect(line(gone)).toMatch(/^delete /);
  });

  it('rejects bad settings without touching the store', async () => {
    const before = await snapshot(b.store);
    await expect(run('rotate', { 'grace-days': '-1' })).rejects.toThrow(/grace-days must be 0 or more/);
    await expect(run('rotate', { 'keep-per-version': 'many' })).rejects.toThrow(/whole number/);
    expect(await snapshot(b.store)).toEqual(before);
  });
});
