import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FsObjectStore } from '../../src/adapters/local/fs-store';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { UserError } from '../../src/core/errors';
import type { ObjectStore } from '../../src/core/ports';
import { runCommand } from '../../src/runner';
import { motoEndpoint, newBucket } from '../helpers/aws';
import { configToml, TempRepo } from '../helpers/git-repo';
import { MemoryLogger } from '../helpers/memory-logger';

interface StoreUnderTest {
  /** Inputs that point needs-model at this store. */
  inputs: Record<string, string>;
  store: ObjectStore;
  uri(prefix: string): string;
}

const backends: [string, () => Promise<StoreUnderTest>][] = [
  [
    'local store',
    async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'mp-nm-store-'));
      return {
        inputs: { backend: 'local', 'local-store': dir },
        store: new FsObjectStore(dir),
        uri: (p) => `file://${dir}/${p}`,
      };
    },
  ],
  [
    'S3 on moto',
    async () => {
      const bucket = await newBucket('needs-model');
      return {
        inputs: { bucket, 's3-endpoint': motoEndpoint() },
        store: new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: motoEndpoint() }),
        uri: (p) => `s3://${bucket}/${p}`,
      };
    },
  ],
];

async function needsModel(
  repo: TempRepo,
  inputs: Record<string, string>,
  env: Record<string, string | undefined> = {},
): Promise<Record<string, string>> {
  const logger = new MemoryLogger();
  const result = await runCommand({
    command: 'needs-model',
    inputs,
    env,
    cwd: repo.dir,
    logger,
    state: new MemoryState(),
    signal: new AbortController().signal,
  });
  expect(result.summary).toContain('### needs-model');
  return result.outputs;
}

async function putModel(
  store: ObjectStore,
  prefix: string,
  files = ['model.zip', 'manifest.json'],
): Promise<void> {
  for (const f of files) await store.put(prefix + f, f === 'model.zip' ? 'zip-bytes' : '{}');
}

/** A complete model folder as train writes it: manifest with the config's sha256, commit and sources. */
async function storedModel(
  store: ObjectStore,
  folder: string,
  config: string,
  commit: string,
  sources?: Record<string, string>,
): Promise<void> {
  const zip = 'zip-bytes';
  await store.put(folder + 'model.zip', zip);
  const manifest = {
    schemaVersion: 1,
    model: { name: 'search', version: folder.split('-')[0], sha: commit },
    files: [{ name: 'model.zip', size: zip.length, sha256: sha256(zip) }],
    config: { path: 'search-config.toml', sha256: sha256(config) },
    git: { sha: commit },
    ...(sources ? { sources } : {}),
  };
  await store.put(folder + 'manifest.json', JSON.stringify(manifest));
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** main at `mainVersion`, then a feature branch that sets `branchVersion`; returns both shas. */
function featureRepo(
  mainVersion: string,
  branchVersion: string,
): { repo: TempRepo; main: string; head: string } {
  const repo = new TempRepo();
  repo.write('search-config.toml', configToml(mainVersion)).write('README.md', 'x');
  const main = repo.commit('main');
  repo.checkout('-b', 'feature');
  repo.write('search-config.toml', configToml(branchVersion));
  const head = repo.commit('change version');
  return { repo, main, head };
}

describe.each(backends)('needs-model against the %s', (_name, makeStore) => {
  let s: StoreUnderTest;
  beforeEach(async () => {
    s = await makeStore();
  });

  it('a feature branch that bumps the version needs a model; every output is set', async () => {
    const { repo, main, head } = featureRepo('1.0.0', '1.1.0');
    const out = await needsModel(repo, s.inputs);
    const sha7 = head.slice(0, 7);
    expect(out['needs-model']).toBe('true');
    expect(out.reason).toBe(
      `version changed 1.0.0 -> 1.1.0 against main (merge-base ${main.slice(0, 7)}) and no model 1.1.0-${sha7} is in the store`,
    );
    expect(out['model-prefix']).toBe(`1.1.0-${sha7}/`);
    expect(out['model-version']).toBe('1.1.0');
    expect(out['model-sha']).toBe(sha7);
    expect(out['model-uri']).toBe(s.uri(`1.1.0-${sha7}/`));
    expect(JSON.parse(out.matrix)).toEqual([
      {
        name: `1.1.0-${sha7}`,
        'config-path': 'search-config.toml',
        'model-prefix': `1.1.0-${sha7}/`,
        'model-version': '1.1.0',
        'model-sha': sha7,
      },
    ]);
  });

  it('a complete model already in the store means no build', async () => {
    const { repo, head } = featureRepo('1.0.0', '1.1.0');
    await putModel(s.store, `1.1.0-${head.slice(0, 7)}/`);
    const out = await needsModel(repo, s.inputs);
    expect(out['needs-model']).toBe('false');
    expect(out.reason).toBe(`a complete model 1.1.0-${head.slice(0, 7)} is already in the store`);
    expect(JSON.parse(out.matrix)).toEqual([]);
    // even when forced: one commit never trains twice
    expect((await needsModel(repo, { ...s.inputs, force: 'true' }))['needs-model']).toBe('false');
  });

  it('a partial model (model.zip without manifest) is rebuilt', async () => {
    const { repo, head } = featureRepo('1.0.0', '1.1.0');
    await putModel(s.store, `1.1.0-${head.slice(0, 7)}/`, ['model.zip']);
    const out = await needsModel(repo, s.inputs);
    expect(out['needs-model']).toBe('true');
    expect(out.reason).toContain('an incomplete earlier attempt will be replaced');
  });

  it('a complete 1.2.10-<sha7> does not count for 1.2.1', async () => {
    const { repo, head } = featureRepo('1.2.0', '1.2.1');
    await putModel(s.store, `1.2.10-${head.slice(0, 7)}/`);
    await putModel(s.store, `1.2.1-${head.slice(0, 7)}extra/`);
    const out = await needsModel(repo, s.inputs);
    expect(out['needs-model']).toBe('true');
    expect(out.reason).not.toContain('incomplete');
  });

  it('a rollback with no stored model of its inputs builds one (defect 3)', async () => {
    const { repo, head } = featureRepo('1.10.0', '1.9.0');
    const out = await needsModel(repo, s.inputs);
    expect(out['needs-model']).toBe('true');
    expect(out.rule).toBe('rollback');
    expect(out.reason).toMatch(
      /^version 1\.9\.0 is lower than 1\.10\.0 at main \(merge-base [0-9a-f]{7}\), a rollback, but no stored model of version 1\.9\.0: building/,
    );
    expect(out['model-prefix']).toBe(`1.9.0-${head.slice(0, 7)}/`);
  });

  it('a rollback whose inputs match a stored model reuses it', async () => {
    const { repo, main } = featureRepo('1.10.0', '1.9.0');
    // the 1.9.0 model trained earlier from exactly this config content
    await storedModel(s.store, `1.9.0-${'e'.repeat(7)}/`, configToml('1.9.0'), 'f'.repeat(40));
    const out = await needsModel(repo, s.inputs);
    expect(out['needs-model']).toBe('false');
    expect(out.rule).toBe('newest');
    expect(out['model-prefix']).toBe('1.9.0-eeeeeee/');
    expect(out['model-sha']).toBe('eeeeeee');
    expect(out['model-uri']).toBe(s.uri('1.9.0-eeeeeee/'));
    expect(main).toBeTruthy();
  });

  describe.each<[string, (repo: TempRepo) => void]>([
    ['merge --no-ff', (r) => r.git('merge', '-q', '--no-ff', '-m', 'merge feature', 'feature')],
    [
      'squash merge',
      (r) => (r.git('merge', '-q', '--squash', 'feature'), r.git('commit', '-q', '-m', 'squash')),
    ],
    [
      'rebase',
      (r) => (
        r.git('checkout', '-q', 'feature'),
        r.git('rebase', '-q', 'main'),
        r.git('checkout', '-q', 'main'),
        r.git('merge', '-q', '--ff-only', 'feature')
      ),
    ],
  ])('after a %s of the branch into main (defect 1)', (_how, merge) => {
    it('reuses the model trained on the branch: no second training', async () => {
      const { repo, head } = featureRepo('1.0.0', '1.1.0');
      const branchFolder = `1.1.0-${head.slice(0, 7)}/`;
      await storedModel(s.store, branchFolder, configToml('1.1.0'), head);
      repo.checkout('main');
      repo.write('NOTES.md', 'main moved on').commit('main moves');
      merge(repo);
      const onMain = repo.head();
      expect(onMain).not.toBe(head);
      const out = await needsModel(repo, s.inputs);
      expect(out['needs-model']).toBe('false');
      expect(out['model-prefix']).toBe(branchFolder);
      expect(out.rule).toBe(_how === 'merge --no-ff' ? 'ancestor' : 'newest');
      expect(out.reason).toMatch(new RegExp(`^reuses ${branchFolder.replace(/\./g, '\\.')}`));
      expect(JSON.parse(out.matrix)).toEqual([]);
      // a README change afterwards builds nothing either
      repo.write('README.md', 'more docs').commit('docs');
      expect(await needsModel(repo, s.inputs)).toMatchObject({
        'needs-model': 'false',
        'model-prefix': branchFolder,
      });
    });
  });

  it('with model-sources, a model serves only commits with the same source content', async () => {
    const { repo, head } = featureRepo('1.0.0', '1.1.0');
    repo.write('train/model.py', 'v1').commit('sources');
    const trained = repo.head();
    const inputs = { ...s.inputs, 'model-sources': 'train/' };
    const tree = repo.git('rev-parse', `${trained}:train`);
    await storedModel(s.store, `1.1.0-${trained.slice(0, 7)}/`, configToml('1.1.0'), trained, {
      train: tree,
    });
    repo.write('README.md', 'docs').commit('docs');
    expect(await needsModel(repo, inputs)).toMatchObject({ 'needs-model': 'false', rule: 'ancestor' });
    repo.write('train/model.py', 'v2').commit('change the model code');
    const changed = await needsModel(repo, inputs);
    // the stored 1.1.0 model was built from other model code: it no longer serves, this commit's is built
    expect(changed).toMatchObject({
      'needs-model': 'true',
      rule: 'version-bump',
      'model-prefix': `1.1.0-${repo.head().slice(0, 7)}/`,
    });
    // without model-sources only the version and config content count: the stored model still serves
    expect(await needsModel(repo, s.inputs)).toMatchObject({ 'needs-model': 'false', rule: 'ancestor' });
    expect(head).toBeTruthy();
  });

  it('model-sources naming a path that does not exist is bad input', async () => {
    const { repo } = featureRepo('1.0.0', '1.1.0');
    await expect(needsModel(repo, { ...s.inputs, 'model-sources': 'nope/' })).rejects.toThrow(
      /model-sources path nope\/ does not exist at commit [0-9a-f]{7}/,
    );
  });

  it('an unchanged version needs no model, whatever else changed', async () => {
    const { repo } = featureRepo('1.0.0', '1.0.0');
    repo.write('search-config.toml', configToml('1.0.0', 'lr = 0.1')).commit('tune');
    const out = await needsModel(repo, s.inputs);
    expect(out['needs-model']).toBe('false');
    expect(out.reason).toMatch(/^version 1\.0\.0 is unchanged against main/);
    // the outputs still name the model this commit would have
    expect(out['model-version']).toBe('1.0.0');
    expect(out['model-prefix']).toBe(`1.0.0-${repo.head().slice(0, 7)}/`);
  });

  it('on main itself compares with the previous commit', async () => {
    const repo = new TempRepo();
    repo.write('search-config.toml', configToml('1.0.0'));
    repo.commit('one');
    repo.write('search-config.toml', configToml('2.0.0'));
    repo.commit('two');
    const out = await needsModel(repo, s.inputs);
    expect(out['needs-model']).toBe('true');
    expect(out.reason).toMatch(/^version changed 1\.0\.0 -> 2\.0\.0 against HEAD~1 /);
    repo.write('README.md', 'docs').commit('three');
    const again = await needsModel(repo, s.inputs);
    expect(again['needs-model']).toBe('false');
    expect(again.reason).toMatch(/^version 2\.0\.0 is unchanged against HEAD~1 \(no stored model/);
  });

  it('the first commit is a new model', async () => {
    const repo = new TempRepo();
    repo.write('search-config.toml', configToml('0.1.0'));
    const sha = repo.commit('first');
    const out = await needsModel(repo, s.inputs);
    expect(out['needs-model']).toBe('true');
    expect(out.reason).toBe(
      `new model: this is the repository's first commit, with nothing before it to compare with; no model 0.1.0-${sha.slice(0, 7)} in the store`,
    );
  });

  it('a config added on a branch is a new model', async () => {
    const repo = new TempRepo();
    repo.write('README.md', 'x').commit('init');
    repo.checkout('-b', 'add-model');
    repo.write('search-config.toml', configToml('0.1.0')).commit('add');
    const out = await needsModel(repo, s.inputs);
    expect(out['needs-model']).toBe('true');
    expect(out.reason).toMatch(/^new model: the config does not exist at main \(merge-base/);
  });

  it('compares with an explicit base-ref', async () => {
    const repo = new TempRepo();
    repo.write('search-config.toml', configToml('1.0.0')).commit('one');
    repo.git('tag', 'v1');
    repo.write('search-config.toml', configToml('1.1.0')).commit('two');
    repo.write('search-config.toml', configToml('1.2.0')).commit('three');
    expect((await needsModel(repo, { ...s.inputs, 'base-ref': 'v1' })).reason).toMatch(
      /^version changed 1\.0\.0 -> 1\.2\.0 against v1 /,
    );
    expect((await needsModel(repo, { ...s.inputs }, { MODEL_PIPELINE_BASE_REF: 'HEAD' })).reason).toMatch(
      /^version 1\.2\.0 is unchanged against HEAD /,
    );
  });

  it('a base-ref that does not exist is bad input that mentions fetch-depth', async () => {
    const { repo } = featureRepo('1.0.0', '1.1.0');
    const run = needsModel(repo, { ...s.inputs, 'base-ref': 'origin/nope' });
    await expect(run).rejects.toBeInstanceOf(UserError);
    await expect(run).rejects.toThrow(/"origin\/nope" not found.*fetch-depth/);
  });

  it('uses the pull request base branch on GitHub', async () => {
    const { repo, main } = featureRepo('1.0.0', '1.1.0');
    // main moved on after the branch: the PR compares with the merge-base, not main's tip
    repo.checkout('main');
    repo.write('search-config.toml', configToml('1.5.0')).commit('main moved');
    repo.git('update-ref', 'refs/remotes/origin/main', repo.head());
    repo.checkout('feature');
    const head = repo.head();
    const out = await needsModel(repo, s.inputs, {
      GITHUB_ACTIONS: 'true',
      GITHUB_SHA: head,
      GITHUB_HEAD_REF: 'feature',
      GITHUB_BASE_REF: 'main',
    });
    expect(out.reason).toBe(
      `version changed 1.0.0 -> 1.1.0 against origin/main (merge-base ${main.slice(0, 7)}) and no model 1.1.0-${head.slice(0, 7)} is in the store`,
    );
  });

  it('names the model by the sha option or the CI sha', async () => {
    const { repo } = featureRepo('1.0.0', '1.1.0');
    expect((await needsModel(repo, { ...s.inputs, sha: 'ABCDEF0123' }))['model-prefix']).toBe(
      '1.1.0-abcdef0/',
    );
    expect(
      (await needsModel(repo, s.inputs, { CIRCLECI: 'true', CIRCLE_SHA1: '1234567abc' }))['model-sha'],
    ).toBe('1234567');
  });

  it('puts the model folder under the store prefix', async () => {
    const { repo, head } = featureRepo('1.0.0', '1.1.0');
    const out = await needsModel(repo, { ...s.inputs, 'store-prefix': '/team/models/' });
    expect(out['model-prefix']).toBe(`team/models/1.1.0-${head.slice(0, 7)}/`);
    expect(out['model-uri']).toBe(s.uri(`team/models/1.1.0-${head.slice(0, 7)}/`));
  });

  describe('several models selected by a glob', () => {
    function twoModels(): { repo: TempRepo; head: string } {
      const repo = new TempRepo();
      repo.write('models/ranker/search-config.toml', configToml('1.0.0'));
      repo.write('models/speller/search-config.toml', configToml('2.0.0', 'name = "spell-fix"'));
      repo.commit('two models');
      repo.checkout('-b', 'feature');
      return { repo, head: '' };
    }

    it('lists only the model whose version changed, named by folder', async () => {
      const { repo } = twoModels();
      repo.write('models/ranker/search-config.toml', configToml('1.1.0'));
      const sha7 = repo.commit('bump ranker').slice(0, 7);
      const out = await needsModel(repo, { ...s.inputs, 'config-path': 'models/*/search-config.toml' });
      expect(out['needs-model']).toBe('true');
      expect(out.reason).toBe('1 of 2 models need building');
      expect(out['model-prefix']).toBe('');
      expect(out['model-uri']).toBe('');
      expect(JSON.parse(out.matrix)).toEqual([
        {
          name: 'ranker',
          'config-path': 'models/ranker/search-config.toml',
          'model-prefix': `ranker/1.1.0-${sha7}/`,
          'model-version': '1.1.0',
          'model-sha': sha7,
        },
      ]);
    });

    it("names a model by its config's name", async () => {
      const { repo } = twoModels();
      repo.write('models/speller/search-config.toml', configToml('2.1.0', 'name = "spell-fix"'));
      const sha7 = repo.commit('bump speller').slice(0, 7);
      const out = await needsModel(repo, { ...s.inputs, 'config-path': 'models/*/search-config.toml' });
      const matrix = JSON.parse(out.matrix) as { name: string; 'model-prefix': string }[];
      expect(matrix.map((m) => [m.name, m['model-prefix']])).toEqual([
        ['spell-fix', `spell-fix/2.1.0-${sha7}/`],
      ]);
    });

    it('needs nothing when neither changed, and skips a model already built', async () => {
      const { repo } = twoModels();
      repo.write('models/ranker/search-config.toml', configToml('1.1.0'));
      const sha7 = repo.commit('bump ranker').slice(0, 7);
      await putModel(s.store, `ranker/1.1.0-${sha7}/`);
      const out = await needsModel(repo, { ...s.inputs, 'config-path': 'models/*/search-config.toml' });
      expect(out['needs-model']).toBe('false');
      expect(out.reason).toBe('0 of 2 models need building');
      expect(out.matrix).toBe('[]');
    });

    it('refuses two configs that share a store folder', async () => {
      const repo = new TempRepo();
      repo.write('models/a/search-config.toml', configToml('1.0.0', 'name = "same"'));
      repo.write('models/b/search-config.toml', configToml('1.0.0', 'name = "same"'));
      repo.commit('clash');
      const run = needsModel(repo, { ...s.inputs, 'config-path': 'models/*/search-config.toml' });
      await expect(run).rejects.toBeInstanceOf(UserError);
      await expect(run).rejects.toThrow(
        'models/b/search-config.toml and models/a/search-config.toml would share the store folder "same": give each a distinct name',
      );
    });

    it('keeps a model at the repo root unnamed when ** matches it too', async () => {
      const { repo } = twoModels();
      repo.write('search-config.toml', configToml('0.1.0'));
      const sha7 = repo.commit('root model').slice(0, 7);
      const out = await needsModel(repo, { ...s.inputs, 'config-path': '**/search-config.toml' });
      const matrix = JSON.parse(out.matrix) as { name: string; 'model-prefix': string }[];
      expect(matrix.map((m) => [m.name, m['model-prefix']])).toEqual([[`0.1.0-${sha7}`, `0.1.0-${sha7}/`]]);
      expect(out['model-uri']).toBe('');
    });

    it('says so when the glob matches nothing', async () => {
      const { repo } = twoModels();
      await expect(needsModel(repo, { ...s.inputs, 'config-path': 'nope/*/c.toml' })).rejects.toThrow(
        /config-path nope\/\*\/c\.toml matches no file/,
      );
    });
  });
});

describe('needs-model settings', () => {
  let bucket: string;
  beforeAll(async () => {
    bucket = await newBucket('settings');
  });

  function repoWithSettings(extra = ''): { repo: TempRepo; sha7: string } {
    const repo = new TempRepo();
    repo.write('search-config.toml', configToml('1.0.0'));
    repo.write(
      'config/dev.env',
      [
        '# dev settings',
        `export MODEL_PIPELINE_BUCKET=${bucket}`,
        `MODEL_PIPELINE_S3_ENDPOINT="${motoEndpoint()}"`,
        'MODEL_PIPELINE_STORE_PREFIX=from-file # a comment',
        extra,
      ].join('\n'),
    );
    return { repo, sha7: repo.commit('first').slice(0, 7) };
  }

  it('reads the settings file', async () => {
    const { repo, sha7 } = repoWithSettings();
    const out = await needsModel(repo, { 'settings-file': 'config/dev.env' });
    expect(out['model-uri']).toBe(`s3://${bucket}/from-file/1.0.0-${sha7}/`);
  });

  it('finds the settings file through MODEL_PIPELINE_SETTINGS_FILE', async () => {
    const { repo, sha7 } = repoWithSettings();
    const out = await needsModel(repo, {}, { MODEL_PIPELINE_SETTINGS_FILE: 'config/dev.env' });
    expect(out['model-uri']).toBe(`s3://${bucket}/from-file/1.0.0-${sha7}/`);
  });

  it('lets the environment override the settings file', async () => {
    const { repo, sha7 } = repoWithSettings();
    const out = await needsModel(
      repo,
      { 'settings-file': 'config/dev.env' },
      { MODEL_PIPELINE_STORE_PREFIX: 'from-env' },
    );
    expect(out['model-uri']).toBe(`s3://${bucket}/from-env/1.0.0-${sha7}/`);
  });

  it('lets inputs override both', async () => {
    const { repo, sha7 } = repoWithSettings();
    const out = await needsModel(
      repo,
      { 'settings-file': 'config/dev.env', 'store-prefix': 'from-flag' },
      { MODEL_PIPELINE_STORE_PREFIX: 'from-env' },
    );
    expect(out['model-uri']).toBe(`s3://${bucket}/from-flag/1.0.0-${sha7}/`);
    const local = await needsModel(repo, { 'settings-file': 'config/dev.env', backend: 'local' });
    expect(local['model-uri']).toBe(`file://${repo.dir}/.model-store/from-file/1.0.0-${sha7}/`);
  });

  it('reports a missing settings file and a bad line in it', async () => {
    const { repo } = repoWithSettings('this is not a setting');
    await expect(needsModel(repo, { 'settings-file': 'config/prod.env' })).rejects.toThrow(
      new UserError(`settings file config/prod.env not found (in ${repo.dir})`),
    );
    await expect(needsModel(repo, { 'settings-file': 'config/dev.env' })).rejects.toThrow(
      /^config\/dev\.env:5: expected KEY=value \(.*\); the line is not shown, it may hold a secret$/,
    );
    await expect(needsModel(repo, { 'settings-file': 'config' })).rejects.toThrow(
      new UserError('settings-file config is a folder, not a file'),
    );
  });

  it('reads config-path and settings-file relative to working-directory', async () => {
    const repo = new TempRepo();
    repo.write('svc/search-config.toml', configToml('3.0.0'));
    repo.write(
      'svc/config/dev.env',
      `MODEL_PIPELINE_BUCKET=${bucket}\nMODEL_PIPELINE_S3_ENDPOINT=${motoEndpoint()}\n`,
    );
    const sha7 = repo.commit('first').slice(0, 7);
    const out = await needsModel(repo, { 'working-directory': 'svc', 'settings-file': 'config/dev.env' });
    expect(out['model-uri']).toBe(`s3://${bucket}/3.0.0-${sha7}/`);
  });
});

describe('needs-model on a shallow clone', () => {
  it('refuses to guess instead of calling every model new', async () => {
    const origin = new TempRepo();
    origin.write('search-config.toml', configToml('1.0.0')).commit('one');
    origin.write('search-config.toml', configToml('1.0.0', 'lr = 1')).commit('two');
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-shallow-'));
    origin.git('clone', '-q', '--depth', '1', `file://${origin.dir}`, dir);
    const clone = Object.assign(Object.create(TempRepo.prototype) as TempRepo, { dir });
    const run = needsModel(clone, { backend: 'local' });
    await expect(run).rejects.toBeInstanceOf(UserError);
    await expect(run).rejects.toThrow(/fetch-depth/);
  });
});

describe('needs-model outside a usable checkout', () => {
  it('asks for a deeper fetch when the pull request base branch was not fetched', async () => {
    const repo = new TempRepo();
    repo.write('search-config.toml', configToml('1.0.0')).commit('one');
    const run = needsModel(repo, { backend: 'local' }, { GITHUB_ACTIONS: 'true', GITHUB_BASE_REF: 'main' });
    await expect(run).rejects.toBeInstanceOf(UserError);
    await expect(run).rejects.toThrow(/origin\/main.*fetch-depth: 0/);
  });

  it('says when the folder is not a git repository', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-nogit-'));
    const notRepo = Object.assign(Object.create(TempRepo.prototype) as TempRepo, { dir });
    writeFileSync(path.join(dir, 'search-config.toml'), configToml('1.0.0'));
    const run = needsModel(notRepo, { backend: 'local' });
    await expect(run).rejects.toBeInstanceOf(UserError);
    await expect(run).rejects.toThrow(`${dir} is not in a git repository`);
  });

  it('says when the working directory does not exist', async () => {
    const repo = new TempRepo();
    repo.write('search-config.toml', configToml('1.0.0')).commit('one');
    await expect(
      needsModel(repo, { backend: 'local', 'working-directory': 'missing', sha: 'abcdef0' }),
    ).rejects.toThrow(/config file search-config\.toml not found|working directory .*missing does not exist/);
  });
});

describe('needs-model inputs it does not use', () => {
  it('warns about them instead of ignoring them silently', async () => {
    const repo = new TempRepo();
    repo.write('search-config.toml', configToml('1.0.0')).commit('one');
    const logger = new MemoryLogger();
    const run = (inputs: Record<string, string>) =>
      runCommand({
        command: 'needs-model',
        inputs,
        env: {},
        cwd: repo.dir,
        logger,
        state: new MemoryState(),
        signal: new AbortController().signal,
      });
    await run({ backend: 'local', force: 'true' });
    expect(logger.lines.filter((l) => l.startsWith('warning:'))).toEqual([]);
    await run({ backend: 'local', 'instance-typo': 'x', 'empty-one': '' });
    expect(logger.lines.filter((l) => l.startsWith('warning:'))).toEqual([
      'warning: needs-model does not use the setting(s) instance-typo; ignored',
    ]);
  });
});
