import { MemoryState } from '../../src/adapters/system/console-logger';
import { runCommand } from '../../src/runner';
import { TEST_AWS_ENV } from '../helpers/aws';
import { TempRepo } from '../helpers/git-repo';
import { putModel, snapshot } from '../helpers/models';
import { storeBackends, type StoreBackend } from '../helpers/backends';
import { quietLogger } from '../helpers/memory-logger';

const key = (c: string): string => c.repeat(64);
const step = (name: string, k: string) => ({
  name,
  key: k,
  status: 'ran' as const,
  cacheHit: false,
  seconds: 1,
  outputs: [`out/${name}`],
});

describe.each(storeBackends('rotate-steps'))('rotate step caches: %s', (_name, make) => {
  let b: StoreBackend;
  let repo: TempRepo;
  const run = (inputs: Record<string, string>) =>
    runCommand({
      command: 'rotate',
      inputs: { ...b.inputs, 'store-prefix': 'models', 'keep-per-version': '0', ...inputs },
      env: { ...TEST_AWS_ENV, USER: 'tester' },
      cwd: repo.dir,
      logger: quietLogger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });

  beforeEach(async () => {
    repo = new TempRepo('mp-rot-steps-');
    repo.write('a.txt', 'main');
    repo.commit('main');
    b = await make();
    // kept (staging) records a; a gone branch's model (deleted by this rotation) records b; c is nobody's
    await putModel(b.store, 'models/1.0.0-aaaaaa1/', {
      markers: ['development', 'staging'],
      extra: { steps: [step('prepare', key('a'))] },
    });
    await putModel(b.store, 'models/1.1.0-bbbbbb1/', {
      markers: ['development'],
      extra: { steps: [step('prepare', key('b'))] },
    });
    for (const k of ['a', 'b', 'c']) {
      await b.store.put(`models/_steps/${key(k)}/outputs.tar.gz`, `outputs ${k}`);
      await b.store.put(`models/_steps/${key(k)}/step.json`, '{}');
    }
  });

  it('deletes the caches no kept model records, keeps the recorded one', async () => {
    const before = await snapshot(b.store);
    const dry = await run({ 'grace-days': '0' });
    expect(dry.text).toMatch(/step caches: would delete 2 \(\d+ B\) that no kept model records, kept 1$/m);
    expect(await snapshot(b.store)).toEqual(before);

    const r = await run({ 'grace-days': '0', 'dry-run': 'false' });
    expect(JSON.parse(r.outputs['deleted-prefixes'])).toEqual(['models/1.1.0-bbbbbb1/']);
    expect(r.text).toMatch(/step caches: deleted 2 /);
    const left = (await snapshot(b.store, 'models/_steps/')).map((l) => l.split(' ')[0]);
    expect(left).toEqual([`models/_steps/${key('a')}/outputs.tar.gz`, `models/_steps/${key('a')}/step.json`]);
  });

  it('keeps unrecorded caches within the grace period (a failed run resumes from them)', async () => {
    const before = await snapshot(b.store, 'models/_steps/');
    const r = await run({ 'grace-days': '30', 'dry-run': 'false' });
    expect(r.text).toMatch(/step caches: deleted 0 \(0 B\) that no kept model records, kept 3/);
    expect(await snapshot(b.store, 'models/_steps/')).toEqual(before);
  });
});
