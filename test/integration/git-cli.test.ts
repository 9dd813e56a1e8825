import { rmSync } from 'node:fs';
import { GitCli } from '../../src/adapters/git/git-cli';
import { UserError } from '../../src/core/errors';
import { TempRepo } from '../helpers/git-repo';

/** GitCli against real repositories: the answers every command builds on (base ref, config at a revision). */
describe('GitCli', () => {
  const repos: TempRepo[] = [];
  const repo = (): TempRepo => {
    const r = new TempRepo('mp-git-cli-');
    repos.push(r);
    return r;
  };
  afterAll(() => repos.forEach((r) => rmSync(r.dir, { recursive: true, force: true })));

  /** A clone of `upstream` whose origin/HEAD names upstream's branch `head`. */
  const cloneOf = (upstream: TempRepo): TempRepo => {
    const c = repo();
    c.git('remote', 'add', 'origin', upstream.dir);
    c.git('fetch', '-q', 'origin');
    return c;
  };

  describe('defaultBranch', () => {
    it('follows origin/HEAD, whatever the branch is called', async () => {
      const up = repo();
      up.write('a', '1').commit('one');
      up.git('branch', '-m', 'trunk');
      const c = cloneOf(up);
      c.git('remote', 'set-head', 'origin', 'trunk');
      expect(await new GitCli(c.dir).defaultBranch()).toBe('origin/trunk');
    });

    it('falls back to origin/main, then origin/master, then a local main or master', async () => {
      const up = repo();
      up.write('a', '1').commit('one');
      up.git('branch', '-m', 'master');
      const c = cloneOf(up); // origin/master only: no origin/HEAD after a plain fetch
      expect(await new GitCli(c.dir).defaultBranch()).toBe('origin/master');
      up.git('branch', 'main');
      c.git('fetch', '-q', 'origin');
      expect(await new GitCli(c.dir).defaultBranch()).toBe('origin/main');

      const local = repo();
      local.write('a', '1').commit('one');
      expect(await new GitCli(local.dir).defaultBranch()).toBe('main');
      local.git('branch', '-m', 'master');
      expect(await new GitCli(local.dir).defaultBranch()).toBe('master');
      local.git('branch', '-m', 'dev');
      expect(await new GitCli(local.dir).defaultBranch()).toBeUndefined();
    });

    it('skips an origin/HEAD that names a branch not fetched', async () => {
      const up = repo();
      up.write('a', '1').commit('one');
      const c = cloneOf(up);
      c.git('symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/remotes/origin/gone');
      expect(await new GitCli(c.dir).defaultBranch()).toBe('origin/main');
    });

    it('has none in a repository without commits', async () => {
      expect(await new GitCli(repo().dir).defaultBranch()).toBeUndefined();
    });
  });

  describe('showFile and objectHash', () => {
    it('read a file at a revision, say undefined for a missing file and refuse a missing revision', async () => {
      const r = repo();
      r.write('conf/a.toml', 'version = "1.0.0"\n').commit('one');
      const first = r.head();
      r.write('conf/a.toml', 'version = "1.1.0"\n').commit('two');
      const git = new GitCli(r.dir);

      expect(await git.showFile('HEAD~1', 'conf/a.toml')).toBe('version = "1.0.0"\n');
      expect(await git.showFile(first, 'conf/a.toml')).toBe('version = "1.0.0"\n');
      expect(await git.showFile('HEAD', 'conf/missing.toml')).toBeUndefined();
      await expect(git.showFile('no-such-branch', 'conf/a.toml')).rejects.toThrow(
        /git revision "no-such-branch" not found/,
      );
      await expect(git.showFile('HEAD~5', 'conf/a.toml')).rejects.toBeInstanceOf(UserError);

      const blob = r.git('rev-parse', 'HEAD:conf/a.toml');
      expect(await git.objectHash('HEAD', 'conf/a.toml')).toBe(blob);
      expect(await git.objectHash('HEAD', 'conf/')).toBe(r.git('rev-parse', 'HEAD:conf'));
      expect(await git.objectHash('HEAD', 'conf/missing.toml')).toBeUndefined();
      await expect(git.objectHash('no-such-branch', 'conf/a.toml')).rejects.toThrow(
        /git revision "no-such-branch" not found/,
      );
    });
  });
});
