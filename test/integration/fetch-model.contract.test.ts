import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { benchmarkArtifacts } from '../../src/commands/benchmark-report';
import { PipelineError, UserError } from '../../src/core/errors';
import { buildContext, findCommand, runCommand } from '../../src/runner';
import { TEST_AWS_ENV } from '../helpers/aws';
import { putModel, snapshot } from '../helpers/models';
import { storeBackends, type StoreBackend } from '../helpers/backends';
import { MemoryLogger } from '../helpers/memory-logger';
import { buildZip, maliciousZips } from '../helpers/zip';

const backends = storeBackends('fetch');

/** A real zip of the given files, built with the zip CLI. */
function makeZip(files: Record<string, string>): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'mp-zip-'));
  const src = path.join(dir, 'src');
  mkdirSync(src);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
    writeFileSync(path.join(src, name), content);
  }
  execFileSync('zip', ['-qry', path.join(dir, 'out.zip'), '.'], { cwd: src });
  return readFileSync(path.join(dir, 'out.zip'));
}

const SHA = 'abc1234def5678abc1234def5678abc1234def56';
const ROOT = 'models';
const DEV = `models/1.2.1-abc1234/`; // this commit's model
const DEV10 = `models/1.2.10-abc1234/`; // same commit, version 1.2.10
const A = 'models/1.0.0-aaaaaaa/';
const B = 'models/1.1.0-bbbbbbb/';
const CONFIG = (v: string) => `version = "${v}"\n`;

describe.each(backends)('fetch-model and benchmark-report: %s', (_name, make) => {
  let b: StoreBackend;
  let cwd: string;
  let logger: MemoryLogger;

  const run = (command: string, inputs: Record<string, string> = {}) =>
    runCommand({
      command,
      inputs: { ...b.inputs, 'store-prefix': ROOT, sha: SHA, ...inputs },
      env: { ...TEST_AWS_ENV, USER: 'deployer' },
      cwd,
      logger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
  const fetch = (environment: string, extra: Record<string, string> = {}) =>
    run('fetch-model', { environment, ...extra });
  const deployments = async (env: string) => {
    const out: Record<string, unknown>[] = [];
    for await (const o of b.store.list(`models/_registry/deployments/${env}/`))
      out.push(JSON.parse((await b.store.get(o.key))!.body.toString('utf8')));
    return out;
  };
  const model = (version: string) =>
    makeZip({ 'weights.bin': `weights of ${version}`, 'tokenizer/vocab.txt': 'a\nb\n' });

  beforeEach(async () => {
    b = await make();
    cwd = mkdtempSync(path.join(tmpdir(), 'mp-fetch-cwd-'));
    logger = new MemoryLogger();
    writeFileSync(path.join(cwd, 'search-config.toml'), CONFIG('1.2.1'));
    await putModel(b.store, A, {
      model: model('1.0.0'),
      benchmark: { metrics: { top1: 0.9, loss: 0.3 } },
      config: { path: 'search-config.toml', content: CONFIG('1.0.0') },
    });
    await putModel(b.store, B, {
      model: model('1.1.0'),
      benchmark: { metrics: { top1: 0.92, loss: 0.28 } },
      config: { path: 'search-config.toml', content: CONFIG('1.1.0') },
    });
  });

  it('development: fetches, verifies and unpacks this commit’s model, then records the deployment', async () => {
    await putModel(b.store, DEV, {
      model: model('1.2.1'),
      config: { path: 'search-config.toml', content: CONFIG('1.2.1') },
    });
    const r = await fetch('development', { dest: 'docker/model' });
    const dir = path.join(cwd, 'docker/model');
    expect(r.outputs).toMatchObject({
      'model-prefix': DEV,
      'model-dir': dir,
      'model-version': '1.2.1',
      'model-uri': b.store.uri(DEV),
    });
    expect(readFileSync(path.join(dir, 'weights.bin'), 'utf8')).toBe('weights of 1.2.1');
    expect(readFileSync(path.join(dir, 'tokenizer/vocab.txt'), 'utf8')).toBe('a\nb\n');
    expect(readFileSync(path.join(dir, 'search-config.toml'), 'utf8')).toBe(CONFIG('1.2.1'));
    expect(
      JSON.parse(readFileSync(path.join(dir, '.model-pipeline/manifest.json'), 'utf8')).model,
    ).toMatchObject({ version: '1.2.1' });
    // no temporary folders left beside dest
    expect(readdirSync(path.join(cwd, 'docker'))).toEqual(['model']);
    const recs = await deployments('development');
    expect(recs).toEqual([
      expect.objectContaining({
        schemaVersion: 1,
        environment: 'development',
        prefix: DEV,
        version: '1.2.1',
        actor: 'deployer',
      }),
    ]);
    expect(r.outputs['deployment-record']).toMatch(
      /_registry\/deployments\/development\/\d{8}T\d{9}Z-[0-9a-f]{8}\.json$/,
    );

    // a second fetch replaces what the first wrote and adds a second record
    await fetch('development', { dest: 'docker/model' });
    expect(readFileSync(path.join(dir, 'weights.bin'), 'utf8')).toBe('weights of 1.2.1');
    expect(await deployments('development')).toHaveLength(2);
  });

  it('exact version: a 1.2.1 request never picks 1.2.10', async () => {
    await putModel(b.store, DEV10, { model: model('1.2.10') });
    await expect(fetch('development')).rejects.toThrow(
      /no model for development: .*models\/1\.2\.1-abc1234\/ does not exist/,
    );
    await expect(fetch('development', { 'model-version': '1.2.1' })).rejects.toThrow(
      /1\.2\.1-abc1234\/ does not exist/,
    );
    expect(await deployments('development')).toEqual([]);
    const ten = await fetch('development', { 'model-version': '1.2.10', dest: 'ten' });
    expect(ten.outputs['model-prefix']).toBe(DEV10);
    expect(readFileSync(path.join(cwd, 'ten', 'weights.bin'), 'utf8')).toBe('weights of 1.2.10');

    await run('promote', { 'model-prefix': DEV10, environment: 'development' });
    await run('promote', { 'model-prefix': DEV10, environment: 'staging' });
    await expect(fetch('staging', { 'model-version': '1.2.1' })).rejects.toThrow(
      /no model for staging at version 1\.2\.1: staging runs models\/1\.2\.10-abc1234\//,
    );
    await expect(fetch('staging', { 'model-version': '1.2' })).rejects.toThrow(UserError);
    expect((await fetch('staging', { 'model-version': '1.2.10', dest: 'st' })).outputs['model-prefix']).toBe(
      DEV10,
    );
  });

  it('staging and production: the model the pointer selects, never the newest folder', async () => {
    await run('promote', { 'model-prefix': A, environment: 'development' });
    await run('promote', { 'model-prefix': A, environment: 'staging' });
    await run('promote', { 'model-prefix': A, environment: 'production' });
    await run('promote', { 'model-prefix': B, environment: 'development' });
    await run('promote', { 'model-prefix': B, environment: 'staging' });
    // newest by LastModified and highest version, but promoted nowhere
    await putModel(b.store, 'models/9.0.0-ccccccc/', { model: model('9.0.0'), markers: ['production'] });

    const prod = await fetch('production', { dest: 'prod' });
    expect(prod.outputs['model-prefix']).toBe(A);
    expect(prod.outputs['model-version']).toBe('1.0.0');
    expect(readFileSync(path.join(cwd, 'prod', 'weights.bin'), 'utf8')).toBe('weights of 1.0.0');
    expect(readFileSync(path.join(cwd, 'prod', 'search-config.toml'), 'utf8')).toBe(CONFIG('1.0.0'));

    const staging = await fetch('staging', { dest: 'stage' });
    expect(staging.outputs['model-prefix']).toBe(B);
    expect(readFileSync(path.join(cwd, 'stage', 'weights.bin'), 'utf8')).toBe('weights of 1.1.0');

    expect(await deployments('production')).toEqual([
      expect.objectContaining({ prefix: A, environment: 'production', pointerSeq: 1 }),
    ]);
    expect(await deployments('staging')).toEqual([
      expect.objectContaining({ prefix: B, environment: 'staging', pointerSeq: 2 }),
    ]);
  });

  it('no model for the environment: a clear error and no record', async () => {
    await expect(fetch('production')).rejects.toThrow(
      /no model for production: nothing was promoted to production/,
    );
    await expect(fetch('production')).rejects.toBeInstanceOf(PipelineError);
    await expect(fetch('development')).rejects.toThrow(/no model for development/);
    await putModel(b.store, DEV, { model: model('1.2.1'), noManifest: true });
    await expect(fetch('development')).rejects.toThrow(/no model for development: .* is incomplete/);
    await expect(fetch('qa')).rejects.toThrow(/environment .*must be one of/);
    expect(await snapshot(b.store, 'models/_registry/')).toEqual([]);
  });

  it('a tampered model.zip fails verification: nothing unpacked, no deployment record', async () => {
    await run('promote', { 'model-prefix': A, environment: 'development' });
    await run('promote', { 'model-prefix': A, environment: 'staging' });
    const before = await snapshot(b.store, 'models/_registry/');
    const original = (await b.store.get(A + 'model.zip'))!.body;
    const tampered = Buffer.from(original);
    tampered[tampered.length - 30] ^= 0xff; // same size, other bytes
    await b.store.put(A + 'model.zip', tampered);
    await expect(fetch('staging', { dest: 'out' })).rejects.toThrow(
      /model\.zip does not match its manifest .*the download was removed/,
    );
    expect(existsSync(path.join(cwd, 'out'))).toBe(false);
    expect(readdirSync(cwd).filter((n) => n.includes('fetch'))).toEqual([]);
    expect(await deployments('staging')).toEqual([]);
    expect(await snapshot(b.store, 'models/_registry/')).toEqual(before);

    await b.store.put(A + 'model.zip', 'short');
    await expect(fetch('staging', { dest: 'out' })).rejects.toThrow(/does not match its manifest/);
    expect(await deployments('staging')).toEqual([]);
  });

  it.each(maliciousZips().map((m) => [m.label, m] as const))(
    'fetch-model and download refuse a model.zip with %s: a clear error, nothing written, no record',
    async (_label, m) => {
      // cwd sits alone in a folder of its own, so anything written beside or above it shows
      const outer = mkdtempSync(path.join(tmpdir(), 'mp-fetch-outer-'));
      const inner = path.join(outer, 'cwd');
      mkdirSync(inner);
      writeFileSync(path.join(inner, 'search-config.toml'), CONFIG('1.2.1'));
      cwd = inner;
      await putModel(b.store, DEV, {
        model: m.zip,
        config: { path: 'search-config.toml', content: CONFIG('1.2.1') },
      });
      const err = await fetch('development', { dest: 'out/model' }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(PipelineError);
      expect((err as Error).message).toMatch(
        /model\.zip is not safe to unpack, nothing was written to .*out\/model: /,
      );
      expect((err as Error).message).toMatch(m.reason);
      expect(readdirSync(outer)).toEqual(['cwd']);
      expect(readdirSync(inner).sort()).toEqual(['out', 'search-config.toml']);
      expect(readdirSync(path.join(inner, 'out'))).toEqual([]);
      expect(await deployments('development')).toEqual([]);

      const dl = await run('download', { 'model-prefix': DEV, dest: 'dl' }).catch((e: Error) => e);
      expect(dl).toBeInstanceOf(PipelineError);
      expect((dl as Error).message).toMatch(/model\.zip is not safe to unpack, it was not downloaded: /);
      expect((dl as Error).message).toMatch(m.reason);
      expect(readdirSync(outer)).toEqual(['cwd']);
      // verified in a staging folder beside dest: a refusal leaves neither dest nor the staging folder
      expect(existsSync(path.join(inner, 'dl'))).toBe(false);
      expect(readdirSync(inner).sort()).toEqual(['out', 'search-config.toml']);
    },
  );

  it('download never writes through a link in dest, and refuses manifest names that leave it', async () => {
    const outside = mkdtempSync(path.join(tmpdir(), 'mp-outside-'));
    writeFileSync(path.join(outside, 'victim'), 'keep');
    mkdirSync(path.join(cwd, 'dl'));
    symlinkSync(path.join(outside, 'victim'), path.join(cwd, 'dl', 'model.zip'));
    await putModel(b.store, DEV, { model: model('1.2.1') });
    await run('download', { 'model-prefix': DEV, dest: 'dl' });
    expect(readFileSync(path.join(outside, 'victim'), 'utf8')).toBe('keep');
    expect(lstatSync(path.join(cwd, 'dl', 'model.zip')).isSymbolicLink()).toBe(false);

    // a folder of dest that is a link to elsewhere
    await putModel(b.store, 'models/2.0.0-ddddddd/', {
      model: model('2.0.0'),
      config: { path: 'conf/search-config.toml', content: CONFIG('2.0.0') },
    });
    const m = JSON.parse((await b.store.get('models/2.0.0-ddddddd/manifest.json'))!.body.toString('utf8'));
    m.files[1].name = 'sub/search-config.toml';
    await b.store.put('models/2.0.0-ddddddd/sub/search-config.toml', CONFIG('2.0.0'));
    await b.store.put('models/2.0.0-ddddddd/manifest.json', JSON.stringify(m));
    mkdirSync(path.join(cwd, 'dl2'));
    symlinkSync(outside, path.join(cwd, 'dl2', 'sub'));
    await expect(run('download', { 'model-prefix': 'models/2.0.0-ddddddd/', dest: 'dl2' })).rejects.toThrow(
      /dl2\/sub exists and is not a folder \(a link\?\); refusing to write through it/,
    );
    expect(readdirSync(outside)).toEqual(['victim']);

    for (const bad of ['../escape.txt', '/tmp/escape.txt', 'a\\b.txt']) {
      m.files[1].name = bad;
      await b.store.put('models/2.0.0-ddddddd/manifest.json', JSON.stringify(m));
      await expect(run('download', { 'model-prefix': 'models/2.0.0-ddddddd/', dest: 'dl3' })).rejects.toThrow(
        /names files outside the model folder|manifest file .* is refused \(backslash in the name\); nothing was downloaded/,
      );
      expect(existsSync(path.join(cwd, 'dl3'))).toBe(false);
    }
  });

  it('fetch-model keeps .model-pipeline/ for itself and refuses a dest it did not write', async () => {
    await putModel(b.store, DEV, {
      model: buildZip([
        { name: 'weights.bin', data: 'w' },
        { name: '.model-pipeline/manifest.json', data: '{"forged":true}' },
      ]),
    });
    await expect(fetch('development', { dest: 'out' })).rejects.toThrow(
      /".model-pipeline\/manifest.json" \(.model-pipeline is reserved for model-pipeline\)/,
    );
    expect(existsSync(path.join(cwd, 'out'))).toBe(false);

    await putModel(b.store, DEV, { model: model('1.2.1') });
    mkdirSync(path.join(cwd, 'mine'));
    writeFileSync(path.join(cwd, 'mine', 'keep.txt'), 'user data');
    await expect(fetch('development', { dest: 'mine' })).rejects.toThrow(
      /dest .*mine is not empty and was not written by fetch-model/,
    );
    expect(readFileSync(path.join(cwd, 'mine', 'keep.txt'), 'utf8')).toBe('user data');
    expect(await deployments('development')).toEqual([]);
  });

  it('a failed benchmark: fetch says no model passed validation, promote refuses unless overridden (recorded)', async () => {
    await putModel(b.store, DEV, {
      model: model('1.2.1'),
      benchmark: { passed: false, metrics: { top1: 0.5 } },
      extra: { benchmark: { passed: false, file: 'benchmark_results.json' } },
    });
    await expect(fetch('development')).rejects.toThrow(
      /no model passed validation for development: models\/1\.2\.1-abc1234\/ failed its benchmark/,
    );
    expect(await deployments('development')).toEqual([]);

    await expect(run('promote', { 'model-prefix': DEV, environment: 'development' })).rejects.toThrow(
      /cannot promote models\/1\.2\.1-abc1234\/: it failed its benchmark/,
    );
    await expect(
      run('promote', { 'model-prefix': DEV, environment: 'development', 'allow-failed-benchmark': 'true' }),
    ).rejects.toThrow(/allow-failed-benchmark needs a reason/);
    expect(await snapshot(b.store, 'models/_registry/')).toEqual([]);

    const p = await run('promote', {
      'model-prefix': DEV,
      environment: 'development',
      'allow-failed-benchmark': 'true',
      reason: 'hotfix needs it',
    });
    expect(p.summary).toMatch(/override/);
    const rec = JSON.parse(
      (await b.store.get('models/_registry/history/development/0000000001.json'))!.body.toString('utf8'),
    );
    expect(rec.reason).toBe('hotfix needs it');
    expect(rec.override).toEqual([
      expect.stringMatching(/^benchmark: models\/1\.2\.1-abc1234\/ failed its benchmark/),
    ]);

    // development fetches by commit, not by pointer: the override must be given again
    const f = await fetch('development', { 'allow-failed-benchmark': 'true', dest: 'dev' });
    expect(f.outputs['model-prefix']).toBe(DEV);
    expect(await deployments('development')).toEqual([
      expect.objectContaining({ override: [expect.stringMatching(/allow-failed-benchmark/)] }),
    ]);
    // staging: the recorded promotion override carries over to the fetch
    await run('promote', {
      'model-prefix': DEV,
      environment: 'staging',
      'allow-failed-benchmark': 'true',
      reason: 'hotfix needs it',
    });
    const s = await fetch('staging', { dest: 'stage' });
    expect(s.outputs['model-prefix']).toBe(DEV);
    expect(logger.lines.some((l) => /warning: fetching .* although its benchmark failed/.test(l))).toBe(true);
  });

  it('benchmark-report: JUnit file and table for a stored model against the current production model', async () => {
    await run('promote', { 'model-prefix': A, environment: 'development' });
    await run('promote', { 'model-prefix': A, environment: 'staging' });
    await run('promote', { 'model-prefix': A, environment: 'production' });
    writeFileSync(
      path.join(cwd, 'thresholds.toml'),
      '[metrics.top1]\nbetter = "higher"\nmin = 0.8\nfail = 0.01\n[metrics.loss]\nbetter = "lower"\nfail = 0.01\n',
    );
    const ok = await run('benchmark-report', {
      'model-prefix': B,
      'thresholds-file': 'thresholds.toml',
      dest: 'reports',
    });
    expect(ok.outputs.passed).toBe('true');
    const xmlFile = path.join(cwd, 'reports', 'benchmark_results.xml');
    expect(ok.outputs['report-file']).toBe(xmlFile);
    const doc = new XMLParser({
      ignoreAttributes: false,
      isArray: (n) => n === 'testcase' || n === 'property',
    }).parse(readFileSync(xmlFile, 'utf8'));
    const cases = doc.testsuites.testsuite[0]?.testcase ?? doc.testsuites.testsuite.testcase;
    expect(cases.map((c: { '@_name': string }) => c['@_name'])).toEqual(['top1', 'loss']);
    const top1 = Object.fromEntries(
      cases[0].properties.property.map((p: Record<string, string>) => [p['@_name'], p['@_value']]),
    );
    expect(top1).toMatchObject({ value: '0.92', current: '0.9', verdict: 'pass' });
    expect(ok.text).toMatch(/against production \(models\/1\.0\.0-aaaaaaa\/\): pass/);

    // A is worse than what production would be compared with if B ran there
    await run('promote', { 'model-prefix': B, environment: 'development' });
    await run('promote', { 'model-prefix': B, environment: 'staging' });
    const bad = await run('benchmark-report', {
      'model-prefix': A,
      'thresholds-file': 'thresholds.toml',
      environment: 'staging',
      dest: 'reports',
    });
    expect(bad.outputs.passed).toBe('false');
    const xml = readFileSync(xmlFile, 'utf8');
    expect(xml).toMatch(/<failure message="top1: dropped by 0\.02 \(fail above 0\.01\)"/);
    expect(logger.lines).toContainEqual(
      expect.stringMatching(/^error: benchmark top1 failed: models\/1\.0\.0-aaaaaaa\//),
    );

    // a model without stored metrics: a clear error, no file claiming a pass
    await putModel(b.store, 'models/2.0.0-ddddddd/', { model: model('2.0.0') });
    await expect(
      run('benchmark-report', { 'model-prefix': 'models/2.0.0-ddddddd/', dest: 'none' }),
    ).rejects.toThrow(/metrics file benchmark_results.json or metrics.json in .* does not exist/);
    expect(existsSync(path.join(cwd, 'none'))).toBe(false);
  });

  it('benchmarkArtifacts: the function train calls, against the current model of an environment', async () => {
    await run('promote', { 'model-prefix': A, environment: 'development' });
    writeFileSync(path.join(cwd, 'out.json'), JSON.stringify({ metrics: { top1: 0.85, loss: 0.29 } }));
    writeFileSync(path.join(cwd, 'limits.json'), JSON.stringify({ metrics: { top1: { fail: 0.02 } } }));
    const ctx = await buildContext(findCommand('benchmark-report'), {
      command: 'benchmark-report',
      inputs: { ...b.inputs, 'store-prefix': ROOT },
      env: TEST_AWS_ENV,
      cwd,
      logger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
    const r = await benchmarkArtifacts(ctx, b.store, B, 'out.json', 'limits.json', 'development');
    expect(r.passed).toBe(false);
    expect(r.annotations).toEqual([
      expect.objectContaining({
        level: 'error',
        message: expect.stringMatching(/top1 = 0\.85: dropped by 0\.05/),
      }),
    ]);
    expect(r.summary).toMatch(/Compared with development \(models\/1\.0\.0-aaaaaaa\/\)/);
    expect(r.xml).toMatch(/<testcase name="top1"/);

    await expect(benchmarkArtifacts(ctx, b.store, B, 'missing.json', 'limits.json')).rejects.toThrow(
      /metrics file missing.json does not exist/,
    );
    writeFileSync(path.join(cwd, 'bad.json'), '{"top1": ');
    await expect(benchmarkArtifacts(ctx, b.store, B, 'bad.json')).rejects.toThrow(UserError);
    writeFileSync(path.join(cwd, 'partial.json'), '{"loss": 0.2}');
    await expect(benchmarkArtifacts(ctx, b.store, B, 'partial.json', 'limits.json')).rejects.toThrow(
      /has no "top1", which the thresholds file requires/,
    );
  });
});
