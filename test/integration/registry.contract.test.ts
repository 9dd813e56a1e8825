import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { PipelineError, UserError } from '../../src/core/errors';
import type { ObjectStore } from '../../src/core/ports';
import { promoteCommand } from '../../src/commands/promote';
import { buildContext, runCommand } from '../../src/runner';
import { TEST_AWS_ENV } from '../helpers/aws';
import { putModel, readCounting, snapshot, uploadBytes } from '../helpers/models';
import { storeBackends, type StoreBackend } from '../helpers/backends';
import { MemoryLogger } from '../helpers/memory-logger';

const backends = storeBackends('registry');

const ROOT = 'models';
const A = 'models/1.0.0-aaaaaaa/';
const B = 'models/1.1.0-bbbbbbb/';
const C = 'models/1.2.0-ccccccc/';

describe.each(backends)('registry commands: %s', (_name, make) => {
  let b: StoreBackend;
  let cwd: string;
  let logger: MemoryLogger;

  const run = (command: string, inputs: Record<string, string> = {}, env: Record<string, string> = {}) =>
    runCommand({
      command,
      inputs: { ...b.inputs, 'store-prefix': ROOT, ...inputs },
      env: { ...TEST_AWS_ENV, USER: 'tester', ...env },
      cwd,
      logger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
  const promote = (prefix: string, environment: string, extra: Record<string, string> = {}) =>
    run('promote', { 'model-prefix': prefix, environment, ...extra });
  const get = async (key: string) => (await b.store.get(key))?.body.toString('utf8');

  beforeEach(async () => {
    b = await make();
    cwd = mkdtempSync(path.join(tmpdir(), 'mp-reg-cwd-'));
    logger = new MemoryLogger();
    await putModel(b.store, A, {
      benchmark: { metrics: { top1: 0.9, loss: 0.3 } },
      config: { path: 'search-config.toml', content: 'version = "1.0.0"\n' },
    });
    await putModel(b.store, B, {
      benchmark: { metrics: { top1: 0.92, loss: 0.28 } },
      config: { path: 'search-config.toml', content: 'version = "1.1.0"\n' },
    });
    await putModel(b.store, C, { benchmark: { metrics: { top1: 0.85, loss: 0.5 } } });
  });

  it('promotes through the environments with markers, pointer, records and outputs', async () => {
    const dev = await promote(A, 'development');
    expect(dev.outputs).toEqual({
      'model-prefix': A,
      environment: 'development',
      'model-uri': b.store.uri(A),
      'previous-prefix': '',
      changed: 'true',
    });
    expect(dev.summary).toMatch(/\| environment \| development \|/);
    expect(await b.store.head(A + 'development')).toMatchObject({ size: 0 });
    await promote(A, 'staging', { reason: 'release 1.0' });
    const prod = await promote(A, 'production');
    expect(prod.outputs['model-prefix']).toBe(A);
    const pointer = JSON.parse((await get('models/_registry/environments/production.json'))!);
    expect(pointer).toMatchObject({
      prefix: A,
      seq: 1,
      record: { action: 'promote', fromEnvironment: 'staging', actor: 'tester' },
    });
    const staging = JSON.parse((await get('models/_registry/history/staging/0000000001.json'))!);
    expect(staging).toMatchObject({
      prefix: A,
      reason: 'release 1.0',
      environment: 'staging',
      fromEnvironment: 'development',
    });

    await promote(B, 'development');
    const second = await promote(B, 'staging');
    expect(second.outputs['previous-prefix']).toBe(A);
    expect(JSON.parse((await get('models/_registry/history/staging/0000000002.json'))!)).toMatchObject({
      prefix: B,
      previousPrefix: A,
      seq: 2,
    });

    const status = await run('status', { environment: 'staging' });
    expect(status.text).toBe(B);
    expect(status.outputs['model-prefix']).toBe(B);
    expect((await run('status', { environment: 'production' })).outputs['model-prefix']).toBe(A);
  });

  it('re-running a promotion is idempotent: no new record, same outputs', async () => {
    await promote(A, 'development');
    const before = await snapshot(b.store, 'models/_registry/');
    const again = await promote(A, 'development');
    expect(again.outputs.changed).toBe('false');
    expect(again.outputs['model-prefix']).toBe(A);
    expect(await snapshot(b.store, 'models/_registry/')).toEqual(before);
  });

  it('refuses the wrong order unless overridden with a reason, and records the override', async () => {
    const before = await snapshot(b.store);
    await expect(promote(A, 'staging')).rejects.toThrow(
      /staging requires the model to be in development first/,
    );
    await expect(promote(A, 'production')).rejects.toBeInstanceOf(UserError);
    await expect(promote(A, 'production', { 'override-order': 'true' })).rejects.toThrow(/needs a reason/);
    expect(await snapshot(b.store)).toEqual(before);
    const r = await promote(A, 'production', { 'override-order': 'true', reason: 'hotfix' });
    expect(r.summary).toMatch(/override/);
    const rec = JSON.parse((await get('models/_registry/history/production/0000000001.json'))!);
    expect(rec.override[0]).toMatch(/production requires .* staging/);
    expect(rec.reason).toBe('hotfix');
  });

  it('bad input changes nothing: unknown environment, missing prefix, not a model folder', async () => {
    const before = await snapshot(b.store);
    await expect(promote(A, 'prod')).rejects.toThrow(
      /environment .*must be one of development, staging, production/,
    );
    await expect(promote('models/9.9.9-9999999/', 'development')).rejects.toThrow(
      /does not exist in the store/,
    );
    await expect(promote('models/latest/', 'development')).rejects.toThrow(UserError);
    await expect(run('promote', { 'model-prefix': A })).rejects.toThrow(/environment/);
    await expect(run('describe', { 'model-prefix': 'models/9.9.9-9999999/' })).rejects.toThrow(
      /no manifest.json/,
    );
    await expect(run('download', { alias: 'nope' })).rejects.toThrow(/alias "nope" is not set/);
    await expect(run('demote', { environment: 'production' })).rejects.toThrow(/no current model/);
    expect(await snapshot(b.store)).toEqual(before);
  });

  it('refuses a tampered model.zip, a size mismatch and a missing manifest, changing nothing', async () => {
    await b.store.put(
      A + 'model.zip',
      Buffer.from(`PK-fake-zip:1.0.0-aaaaaaa:`.repeat(199) + 'PK-fake-zip:1.0.0-aaaaaaX:'),
    );
    await b.store.put(B + 'model.zip', 'short');
    await putModel(b.store, 'models/3.0.0-ddddddd/', { noManifest: true });
    const before = await snapshot(b.store);
    await expect(promote(A, 'development')).rejects.toThrow(/model.zip has sha256 .* the manifest says/);
    await expect(promote(A, 'development')).rejects.toBeInstanceOf(PipelineError);
    await expect(promote(B, 'development')).rejects.toThrow(/model.zip is 5 bytes, the manifest says/);
    await expect(promote('models/3.0.0-ddddddd/', 'development')).rejects.toThrow(/has no manifest.json/);
    await expect(run('download', { 'model-prefix': A, dest: 'out' })).rejects.toThrow(
      /does not match its manifest/,
    );
    expect(existsSync(path.join(cwd, 'out', 'model.zip'))).toBe(false);
    expect(await snapshot(b.store)).toEqual(before);
  });

  describe('verifying from what the store reports (manifest records of the upload)', () => {
    const D = 'models/2.0.0-ddddddd/';
    const MODEL = Buffer.from('PK-recorded-model:'.repeat(500));

    /** promote through a store that records every read of object bytes */
    const promoteCounting = async (prefix: string, inputs: Record<string, string> = {}) => {
      const ctx = await buildContext(promoteCommand, {
        command: 'promote',
        inputs: {
          ...b.inputs,
          'store-prefix': ROOT,
          'model-prefix': prefix,
          environment: 'development',
          ...inputs,
        },
        env: { ...TEST_AWS_ENV },
        cwd,
        logger,
        state: new MemoryState(),
        signal: new AbortController().signal,
      });
      const counted = readCounting(b.store);
      ctx.deps.store = () => counted.store;
      const modelReads = () =>
        counted.reads.filter((k) => k.startsWith(prefix) && !k.endsWith('manifest.json'));
      try {
        return { result: await promoteCommand.run(ctx), modelReads: modelReads() };
      } catch (err) {
        return { error: err as Error, modelReads: modelReads() };
      }
    };

    beforeEach(async () => {
      await putModel(b.store, D, { recorded: true, model: MODEL, benchmark: { metrics: { top1: 0.9 } } });
    });

    it('records each file as the store reported it at upload', async () => {
      const manifest = JSON.parse((await get(D + 'manifest.json'))!);
      for (const f of manifest.files) {
        const now = await b.store.stat(D + f.name);
        expect(f.stored).toBeDefined();
        if (f.stored.checksum) expect(now?.checksum?.value).toBeDefined();
        if (f.stored.versionId) expect(now?.versionId).toBe(f.stored.versionId);
      }
    });

    it('promotes an unchanged model without reading any of its bytes', async () => {
      const r = await promoteCounting(D);
      expect(r.error).toBeUndefined();
      expect(r.result?.outputs.changed).toBe('true');
      expect(r.modelReads).toEqual([]);
      expect(logger.text()).toMatch(
        /all 2 files match the checksums recorded at upload \(nothing downloaded\)/,
      );
    });

    it('catches a replaced model.zip (other bytes, same size), changing nothing', async () => {
      const other = Buffer.from(MODEL);
      other[100] ^= 0xff;
      await uploadBytes(b.store, D + 'model.zip', other);
      const before = await snapshot(b.store);
      const r = await promoteCounting(D);
      expect(r.error).toBeInstanceOf(PipelineError);
      expect(r.error?.message).toMatch(/does not match its manifest: model\.zip /);
      if (_name === 'S3 on moto') {
        // S3 keeps the CRC32 of what was uploaded: the replacement is caught from HeadObject alone
        expect(r.error?.message).toMatch(
          /model\.zip has CRC32 .* the manifest recorded .* at upload: it was replaced/,
        );
        expect(r.modelReads).toEqual([]);
      } else {
        // a folder keeps no checksum: the new version of the file says only that it was rewritten
        expect(logger.text()).toMatch(/model\.zip was written again .*: hashing its bytes/);
        expect(r.error?.message).toMatch(/model\.zip has sha256 /);
      }
      expect(await snapshot(b.store)).toEqual(before);
    });

    it('describe says whether each file is still as uploaded, from HEAD alone', async () => {
      const ok = await run('describe', { 'model-prefix': D });
      expect(ok.text).toMatch(/model\.zip\s+.*sha256:[0-9a-f]{64}\s+as uploaded/);
      const other = Buffer.from(MODEL);
      other[5] ^= 0xff;
      await uploadBytes(b.store, D + 'model.zip', other);
      const bad = await run('describe', { 'model-prefix': D });
      const expected = _name === 'S3 on moto' ? 'CHANGED' : 'rewritten \\(promote hashes it\\)';
      expect(bad.text).toMatch(new RegExp(`model\\.zip\\s+.*sha256:[0-9a-f]{64}\\s+${expected}`));
      expect(bad.text).toMatch(/benchmark_results\.json\s+.*\s+as uploaded/);
      const old = await run('describe', { 'model-prefix': A });
      expect(old.text).toMatch(/model\.zip\s+.*\s+not recorded/);
    });

    it('a rewrite with the same bytes passes: S3 by its ETag, a folder by hashing the new version', async () => {
      await b.store.put(D + 'model.zip', MODEL); // no checksum sent
      const r = await promoteCounting(D);
      expect(r.error).toBeUndefined();
      if (_name === 'S3 on moto') {
        expect(r.modelReads).toEqual([]);
      } else {
        expect(r.modelReads).toEqual([D + 'model.zip']);
        expect(logger.text()).toMatch(/model\.zip was written again .*: hashing its bytes to check it/);
      }
    });

    it('deep-verify downloads and hashes every file; folders without records are hashed, said once', async () => {
      const deep = await promoteCounting(D, { 'deep-verify': 'true' });
      expect(deep.error).toBeUndefined();
      expect(deep.modelReads.sort()).toEqual([D + 'benchmark_results.json', D + 'model.zip']);
      const old = await promoteCounting(A);
      expect(old.error).toBeUndefined();
      expect(old.modelReads.length).toBe(3);
      const said = logger.lines.filter((l) => /records no store checksums/.test(l));
      expect(said).toEqual([
        `${b.store.uri(A)}: the manifest records no store checksums for 3 of 3 files (written before they were recorded): downloading and hashing them`,
      ]);
    });
  });

  it('the benchmark gate compares with the current model and fails beyond the threshold', async () => {
    writeFileSync(
      path.join(cwd, 'gate.json'),
      JSON.stringify({
        metrics: { top1: { better: 'higher', warn: 0.01, fail: 0.02 }, loss: { better: 'lower', fail: 0.1 } },
      }),
    );
    await promote(A, 'development', { 'thresholds-file': 'gate.json' });
    const ok = await promote(B, 'development', { 'thresholds-file': 'gate.json' });
    expect(ok.summary).toMatch(/#### benchmark gate/);
    expect(ok.summary).toMatch(/\| top1 \| 0.9 \| 0.92 \| \+0.02 \| ok \|/);
    const before = await snapshot(b.store);
    await expect(promote(C, 'development', { 'thresholds-file': 'gate.json' })).rejects.toThrow(
      /benchmark gate failed .*top1: dropped by 0.07/,
    );
    expect(await snapshot(b.store)).toEqual(before);
    await expect(promote(C, 'development', { 'thresholds-file': 'missing.json' })).rejects.toThrow(
      /thresholds file missing.json not found/,
    );
  });

  it('demote steps back to the previous model, removes the marker and records it', async () => {
    for (const p of [A, B, C]) await promote(p, 'development');
    const r = await run('demote', { environment: 'development', reason: 'bad model' });
    expect(r.outputs).toMatchObject({ 'model-prefix': B, 'previous-prefix': C, environment: 'development' });
    expect(await b.store.head(C + 'development')).toBeUndefined();
    const r2 = await run('demote', { environment: 'development' });
    expect(r2.outputs['model-prefix']).toBe(A);
    const rec = JSON.parse((await get('models/_registry/history/development/0000000004.json'))!);
    expect(rec).toMatchObject({ action: 'demote', prefix: B, previousPrefix: C, reason: 'bad model' });
    // to a named prefix that never was in the environment: refused without override
    await expect(run('demote', { environment: 'staging', 'model-prefix': A })).rejects.toThrow(
      /no current model/,
    );
    // a rolled-back model lost its marker: it must be promoted again before it moves on
    await expect(promote(B, 'staging')).rejects.toThrow(/requires the model to be in development/);
    await promote(A, 'staging');
    const before = await snapshot(b.store);
    await expect(run('demote', { environment: 'staging', 'model-prefix': C })).rejects.toThrow(
      /was never in staging/,
    );
    expect(await snapshot(b.store)).toEqual(before);
    const forced = await run('demote', {
      environment: 'staging',
      'model-prefix': C,
      'override-order': 'true',
      reason: 'test',
    });
    expect(forced.outputs['model-prefix']).toBe(C);
  });

  it('two promotions that read the same pointer cannot both win', async () => {
    await promote(A, 'development');
    // both runs read the pointer before either writes it
    let waiting = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const racingStore = (): ObjectStore => {
      const inner = b.store;
      return new Proxy(inner, {
        get(target, prop, receiver) {
          if (prop === 'get')
            return async (key: string) => {
              const v = await target.get(key);
              if (key.endsWith('_registry/environments/development.json') && waiting < 2) {
                waiting++;
                if (waiting === 2) release();
                await gate;
              }
              return v;
            };
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    };
    const one = async (prefix: string) => {
      const ctx = await buildContext(promoteCommand, {
        command: 'promote',
        inputs: { ...b.inputs, 'store-prefix': ROOT, 'model-prefix': prefix, environment: 'development' },
        env: { ...TEST_AWS_ENV },
        cwd,
        logger,
        state: new MemoryState(),
        signal: new AbortController().signal,
      });
      const store = racingStore();
      ctx.deps.store = () => store;
      return promoteCommand.run(ctx);
    };
    const results = await Promise.allSettled([one(B), one(C)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0].reason).toBeInstanceOf(PipelineError);
    expect(String(lost[0].reason.message)).toMatch(/another run changed development/);
    const winner = (won[0] as PromiseFulfilledResult<{ outputs: Record<string, string> }>).value.outputs[
      'model-prefix'
    ];
    const loser = winner === B ? C : B;
    const pointer = JSON.parse((await get('models/_registry/environments/development.json'))!);
    expect(pointer).toMatchObject({ prefix: winner, seq: 2 });
    expect(await b.store.head(loser + 'development')).toBeUndefined();
    expect(await b.store.head(winner + 'development')).toBeDefined();
  });

  it('many parallel promotions produce one linear history', async () => {
    const folders: string[] = [];
    for (let i = 0; i < 8; i++) {
      const f = `models/2.0.${i}-${String(i).repeat(7)}/`;
      folders.push(f);
      await putModel(b.store, f);
    }
    const results = await Promise.allSettled(folders.map((f) => promote(f, 'development')));
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.outputs] : []));
    for (const r of results)
      if (r.status === 'rejected') expect(r.reason.message).toMatch(/another run changed development/);
    expect(won.length).toBeGreaterThanOrEqual(1);
    const history: { seq: number; prefix: string; previousPrefix?: string }[] = [];
    for await (const o of b.store.list('models/_registry/history/development/'))
      history.push(JSON.parse((await get(o.key))!));
    // every winner has its own record, the records chain, and the pointer is the last one
    expect(history.map((h) => h.seq)).toEqual(history.map((_, i) => i + 1));
    expect(history).toHaveLength(won.length);
    expect(new Set(history.map((h) => h.prefix))).toEqual(new Set(won.map((w) => w['model-prefix'])));
    for (let i = 1; i < history.length; i++) expect(history[i].previousPrefix).toBe(history[i - 1].prefix);
    const pointer = JSON.parse((await get('models/_registry/environments/development.json'))!);
    expect(pointer.prefix).toBe(history[history.length - 1].prefix);
    const markers = (await Promise.all(folders.map((f) => b.store.head(f + 'development')))).filter(Boolean);
    expect(markers).toHaveLength(won.length);
  });

  it('status lists every model with environments and benchmark headline', async () => {
    await promote(A, 'development');
    await promote(A, 'staging');
    await promote(B, 'development');
    const r = await run('status');
    const models = JSON.parse(r.outputs.models);
    expect(models.map((m: { prefix: string }) => m.prefix)).toEqual([C, B, A]);
    expect(models[2]).toMatchObject({
      version: '1.0.0',
      sha: 'aaaaaaa',
      environments: ['development', 'staging'],
      current: ['staging'],
    });
    expect(r.text).toMatch(
      /models\/1.0.0-aaaaaaa\/\s+1.0.0\s+aaaaaaa\s+.*development, staging\*\s+passed: top1=0.9 loss=0.3/,
    );
    // sizes say what they count: model.zip alone and the whole folder
    expect(r.text).toMatch(/^prefix\s+version\s+sha\s+model\.zip\s+folder\s+created/);
    // the same verdict describe shows (defect 2: status said "-" where describe said passed)
    const described = await run('describe', { 'model-prefix': A });
    expect(described.text).toMatch(/benchmark\s+passed/);
    expect(models[2].benchmark).toMatch(/^passed: /);
    expect(models[2].modelSize).toBeLessThan(models[2].folderSize);
    expect(r.summary).toMatch(/\| models\/1.1.0-bbbbbbb\/ \| 1.1.0 \| bbbbbbb \|/);
    await expect(run('status', { environment: 'production' })).rejects.toThrow(/no model is in production/);
  });

  it('describe, download (verified), find by config, aliases', async () => {
    const d = await run('describe', { 'model-prefix': '1.0.0-aaaaaaa' });
    expect(d.outputs['model-prefix']).toBe(A);
    expect(JSON.parse(d.outputs.manifest).files.map((f: { name: string }) => f.name)).toEqual([
      'model.zip',
      'benchmark_results.json',
      'search-config.toml',
    ]);
    expect(d.text).toMatch(/model\.zip\s+.*sha256:[0-9a-f]{64}/);

    await run('alias', { alias: 'best', 'model-prefix': B, reason: 'q3' });
    expect((await run('alias', { alias: 'best' })).outputs['model-prefix']).toBe(B);
    expect(JSON.parse((await run('alias')).outputs.aliases)).toEqual({ best: B });
    await expect(run('alias', { alias: 'x', 'model-prefix': 'models/3.0.0-ddddddd/' })).rejects.toThrow(
      /does not exist/,
    );

    const dl = await run('download', { alias: 'best', dest: 'got' });
    expect(dl.outputs.path).toBe(path.join(cwd, 'got'));
    expect(readFileSync(path.join(cwd, 'got', 'search-config.toml'), 'utf8')).toBe('version = "1.1.0"\n');
    expect(JSON.parse(readFileSync(path.join(cwd, 'got', 'manifest.json'), 'utf8')).model.version).toBe(
      '1.1.0',
    );

    writeFileSync(path.join(cwd, 'search-config.toml'), 'version = "1.0.0"\n');
    const f = await run('find', { 'same-config': 'search-config.toml' });
    expect(JSON.parse(f.outputs['model-prefixes'])).toEqual([A]);
  });

  it("demote without model-prefix finds the environment of config-path's named model", async () => {
    const first = 'models/search/2.0.0-aaaaaa2/';
    const second = 'models/search/2.1.0-bbbbbb2/';
    await putModel(b.store, first);
    await putModel(b.store, second);
    await promote(first, 'development');
    await promote(second, 'development');
    writeFileSync(path.join(cwd, 'search-config.toml'), 'name = "search"\nversion = "2.1.0"\n');
    const r = await run('demote', { environment: 'development' });
    expect(r.outputs).toMatchObject({ 'model-prefix': first, 'previous-prefix': second });
  });

  it('download leaves nothing new in dest when a later file fails verification (defect 5)', async () => {
    // model.zip verifies; search-config.toml (listed after it) was changed in the store
    await b.store.put(B + 'search-config.toml', 'version = "9.9.9"\n');
    for (const dest of ['fresh', 'existing']) {
      if (dest === 'existing') writeFileSync(path.join(cwd, 'keep.txt'), 'x');
      const target = dest === 'existing' ? cwd : path.join(cwd, dest);
      const before = existsSync(target) ? readdirSync(target).sort() : undefined;
      await expect(
        run('download', { 'model-prefix': B, dest: dest === 'existing' ? '.' : dest }),
      ).rejects.toThrow(/search-config\.toml does not match its manifest/);
      expect(existsSync(target) ? readdirSync(target).sort() : undefined).toEqual(before);
    }
    expect(readdirSync(cwd).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('download --with-inputs fetches and verifies referenced data keys', async () => {
    const data = Buffer.from('training data');
    await b.store.put('data/train.csv', data);
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256').update(data).digest('hex');
    await putModel(b.store, 'models/4.0.0-eeeeeee/', {
      inputs: [{ key: b.store.uri('data/train.csv'), sha256: hash, size: data.length }],
    });
    const r = await run('download', {
      'model-prefix': 'models/4.0.0-eeeeeee/',
      dest: 'd',
      'with-inputs': 'true',
    });
    expect(readFileSync(path.join(cwd, 'd', 'inputs', 'data', 'train.csv'), 'utf8')).toBe('training data');
    expect(r.outputs.files).toBe('2');
    await b.store.put('data/train.csv', 'tampered data');
    await expect(
      run('download', { 'model-prefix': 'models/4.0.0-eeeeeee/', dest: 'e', 'with-inputs': 'true' }),
    ).rejects.toThrow(/data\/train.csv does not match its manifest/);
  });
});
