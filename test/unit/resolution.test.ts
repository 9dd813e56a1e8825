import { parseModelName } from '../../src/core/identity';
import {
  resolveModelOfCommit,
  sameInputs,
  servingCandidates,
  type ModelOfCommitQuery,
  type StoredModel,
} from '../../src/core/resolution';

const C = 'c0ffee0000000000000000000000000000000000';
const CONFIG = 'a'.repeat(64);

function query(version = '1.2.1', sources?: Record<string, string>): ModelOfCommitQuery {
  return { inputs: { version, configSha256: CONFIG, sources }, sha: C, ownFolder: `m/${version}-c0ffee0/` };
}

function stored(
  name: string,
  extra: Partial<StoredModel> & { config?: string; sources?: Record<string, string> } = {},
): StoredModel {
  const id = parseModelName(name)!;
  return {
    folder: `m/${name}/`,
    id,
    complete: true,
    manifest: {
      configSha256: extra.config ?? CONFIG,
      sources: extra.sources,
      commit: id.sha7 + '0'.repeat(33),
    },
    created: new Date('2026-01-01T00:00:00Z'),
    ...extra,
  };
}

describe('resolveModelOfCommit (the one resolution rule)', () => {
  it("C's own complete folder wins (rule this-commit)", () => {
    const r = resolveModelOfCommit(query(), [
      stored('1.2.1-c0ffee0', { config: 'b'.repeat(64) }),
      stored('1.2.1-aaaaaaa', { relation: 'ancestor' }),
    ]);
    expect(r).toMatchObject({ found: true, folder: 'm/1.2.1-c0ffee0/', rule: 'this-commit' });
  });

  it('prefers a folder built from an ancestor of C over a newer one that is not (merge commit)', () => {
    const r = resolveModelOfCommit(query(), [
      stored('1.2.1-aaaaaaa', { relation: 'ancestor', created: new Date('2026-01-01') }),
      stored('1.2.1-bbbbbbb', { relation: 'other', created: new Date('2026-02-01') }),
    ]);
    expect(r).toMatchObject({ found: true, folder: 'm/1.2.1-aaaaaaa/', rule: 'ancestor' });
  });

  it('among ancestors and among others, takes the newest (squash, rebase, cherry-pick)', () => {
    const anc = resolveModelOfCommit(query(), [
      stored('1.2.1-aaaaaaa', { relation: 'ancestor', created: new Date('2026-01-01') }),
      stored('1.2.1-ccccccc', { relation: 'ancestor', created: new Date('2026-03-01') }),
    ]);
    expect(anc).toMatchObject({ folder: 'm/1.2.1-ccccccc/', rule: 'ancestor' });
    const other = resolveModelOfCommit(query(), [
      stored('1.2.1-aaaaaaa', { created: new Date('2026-01-01') }),
      stored('1.2.1-bbbbbbb', { created: new Date('2026-02-01') }),
    ]);
    expect(other).toMatchObject({ folder: 'm/1.2.1-bbbbbbb/', rule: 'newest' });
    expect(other.reason).toMatch(/newest of 2 such folder\(s\), its commit is not an ancestor/);
  });

  it('keeps the exact-prefix guarantee: 1.2.1 never matches 1.2.10 or 1.2.1-rc.1', () => {
    const r = resolveModelOfCommit(query('1.2.1'), [stored('1.2.10-aaaaaaa'), stored('1.2.1-rc.1-bbbbbbb')]);
    expect(r).toMatchObject({ found: false, folder: 'm/1.2.1-c0ffee0/', partial: false });
  });

  it('serves only complete folders with the same config content', () => {
    const r = resolveModelOfCommit(query(), [
      stored('1.2.1-aaaaaaa', { config: 'b'.repeat(64), relation: 'ancestor' }),
      stored('1.2.1-bbbbbbb', { complete: false, manifest: undefined }),
      stored('1.2.1-ddddddd', { manifest: undefined }),
    ]);
    expect(r.found).toBe(false);
    expect(r.reason).toMatch(/1\.2\.1-aaaaaaa: other config content/);
    expect(r.reason).toMatch(/1\.2\.1-bbbbbbb: incomplete/);
    expect(r.reason).toMatch(/1\.2\.1-ddddddd: manifest unreadable/);
  });

  it('with model-sources, the recorded tree hashes must match too', () => {
    const q = query('1.2.1', { 'train/': 't1', 'features.py': 'f1' });
    const same = stored('1.2.1-aaaaaaa', { sources: { 'features.py': 'f1', 'train/': 't1' } });
    const changed = stored('1.2.1-bbbbbbb', { sources: { 'features.py': 'f2', 'train/': 't1' } });
    const unrecorded = stored('1.2.1-ccccccc');
    expect(sameInputs(q, same)).toEqual({ ok: true });
    expect(sameInputs(q, changed)).toEqual({ ok: false, why: 'other content of features.py' });
    expect(sameInputs(q, unrecorded)).toEqual({ ok: false, why: 'its manifest records no model-sources' });
    expect(servingCandidates(q, [same, changed, unrecorded]).map((m) => m.folder)).toEqual([
      'm/1.2.1-aaaaaaa/',
    ]);
    // without model-sources, a README change (or anything outside the config) does not matter
    expect(sameInputs(query(), changed)).toEqual({ ok: true });
  });

  it("says the own folder is partial when it holds an interrupted run's files", () => {
    const r = resolveModelOfCommit(query(), [
      stored('1.2.1-c0ffee0', { complete: false, manifest: undefined }),
    ]);
    expect(r).toMatchObject({ found: false, partial: true, folder: 'm/1.2.1-c0ffee0/' });
  });
});
