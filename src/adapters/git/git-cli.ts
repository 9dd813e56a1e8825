import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { UserError } from '../../core/errors';
import type { Git } from '../../core/ports';

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cwd: string, args: string[]): Promise<RunResult> {
  // LC_ALL=C: callers read git's messages (e.g. "does not exist"), which a translated git would change
  const env = { ...process.env, LC_ALL: 'C' };
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      { cwd, env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const spawnCode = (err as NodeJS.ErrnoException | null)?.code;
        if (typeof spawnCode === 'string') {
          // spawn reports a missing cwd as ENOENT too, so say which one is missing
          if (spawnCode === 'ENOENT' && !existsSync(cwd))
            reject(new UserError(`working directory ${cwd} does not exist (check working-directory)`));
          else if (spawnCode === 'ENOENT') reject(new UserError(`git is not installed or not on PATH`));
          else reject(new Error(`git ${args[0]} failed: ${(err as Error).message}`));
          return;
        }
        if (/not a git repository/i.test(stderr)) {
          reject(
            new UserError(`${cwd} is not in a git repository: run in a checkout or set working-directory`),
          );
          return;
        }
        const code = err ? Number((err as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const SHALLOW_HINT =
  'the checkout may be shallow: in GitHub use actions/checkout with fetch-depth: 0, in CircleCI a full checkout';

/**
 * Git through the git command line, in a working directory. One instance serves one command run (src/wiring.ts),
 * which reads the repository and never moves its refs: a revision resolved once (HEAD, HEAD~1) is not asked
 * again, since each git process costs a few ms of every command's start.
 */
export class GitCli implements Git {
  private readonly commits = new Map<string, Promise<string | undefined>>();

  constructor(private readonly cwd: string = process.cwd()) {}

  private commitOf(rev: string): Promise<string | undefined> {
    let found = this.commits.get(rev);
    if (!found) {
      found = run(this.cwd, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]).then((r) =>
        r.code === 0 ? r.stdout.trim() : undefined,
      );
      found.catch(() => this.commits.delete(rev)); // a failed git process is asked again next time
      this.commits.set(rev, found);
    }
    return found;
  }

  async revParse(rev: string): Promise<string> {
    const sha = await this.commitOf(rev);
    if (sha === undefined) throw new UserError(`git revision "${rev}" not found (${SHALLOW_HINT})`);
    return sha;
  }

  async hasCommit(rev: string): Promise<boolean> {
    return (await this.commitOf(rev)) !== undefined;
  }

  /**
   * One `git show` on the way that succeeds; only a failure asks rev-parse whether the revision or the
   * file was missing (each git process costs a few ms of every command's start).
   */
  async showFile(rev: string, file: string): Promise<string | undefined> {
    const spec = file.startsWith('/') ? file : `./${file}`;
    const r = await run(this.cwd, ['show', `${rev}:${spec}`]);
    if (r.code === 0) return r.stdout;
    await this.revParse(rev);
    if (/does not exist|exists on disk, but not in/.test(r.stderr)) return undefined;
    throw new UserError(`git show ${rev}:${file} failed: ${r.stderr.trim()}`);
  }

  async objectHash(rev: string, file: string): Promise<string | undefined> {
    const spec = file.startsWith('/') ? file.replace(/^\/+/, '') : `./${file.replace(/\/+$/, '')}`;
    const r = await run(this.cwd, ['rev-parse', '--verify', '--quiet', `${rev}:${spec}`]);
    if (r.code === 0 && r.stdout.trim()) return r.stdout.trim();
    await this.revParse(rev); // a missing revision is an error, a missing file is not
    return undefined;
  }

  async mergeBase(a: string, b: string): Promise<string> {
    const r = await run(this.cwd, ['merge-base', a, b]);
    if (r.code !== 0) throw new UserError(`no merge base between ${a} and ${b} (${SHALLOW_HINT})`);
    return r.stdout.trim();
  }

  async changedFiles(base: string, head: string): Promise<string[]> {
    const r = await run(this.cwd, ['diff', '--name-only', base, head]);
    if (r.code !== 0) throw new UserError(`git diff ${base} ${head} failed: ${r.stderr.trim()}`);
    return r.stdout.split('\n').filter((l) => l.length > 0);
  }

  async currentBranch(): Promise<string | undefined> {
    const r = await run(this.cwd, ['symbolic-ref', '--short', '-q', 'HEAD']);
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  async liveBranches(): Promise<string[]> {
    const r = await run(this.cwd, ['for-each-ref', '--format=%(refname)', 'refs/heads', 'refs/remotes']);
    if (r.code !== 0) throw new UserError(`git for-each-ref failed: ${r.stderr.trim()}`);
    const names = new Set<string>();
    for (const ref of r.stdout.split('\n')) {
      if (ref.startsWith('refs/heads/')) names.add(ref.slice('refs/heads/'.length));
      else if (ref.startsWith('refs/remotes/')) {
        const rest = ref.slice('refs/remotes/'.length);
        const name = rest.slice(rest.indexOf('/') + 1);
        if (name !== 'HEAD') names.add(name);
      }
    }
    return [...names].sort();
  }

  async isAncestor(commit: string, ref: string): Promise<boolean> {
    const r = await run(this.cwd, ['merge-base', '--is-ancestor', commit, ref]);
    return r.code === 0;
  }

  async isShallow(): Promise<boolean> {
    const r = await run(this.cwd, ['rev-parse', '--is-shallow-repository']);
    return r.code === 0 && r.stdout.trim() === 'true';
  }

  /**
   * The remote's default branch (origin/HEAD), falling back to main or master where they exist: one
   * `git for-each-ref` over the candidates instead of a process per candidate.
   */
  async defaultBranch(): Promise<string | undefined> {
    const candidates = ['origin/main', 'origin/master', 'main', 'master'];
    const full = (name: string): string =>
      name.startsWith('origin/') ? `refs/remotes/${name}` : `refs/heads/${name}`;
    const r = await run(this.cwd, [
      'for-each-ref',
      '--format=%(refname)%00%(symref)%00%(objecttype)',
      'refs/remotes/origin/HEAD',
      ...candidates.map(full),
    ]);
    if (r.code !== 0) throw new UserError(`git for-each-ref failed: ${r.stderr.trim()}`);
    const commits = new Map<string, string>(); // refname -> symref target ('' when not symbolic)
    for (const line of r.stdout.split('\n')) {
      const [ref, symref, type] = line.split('\0');
      if (ref && type === 'commit') commits.set(ref, symref ?? '');
    }
    const originHead = commits.get('refs/remotes/origin/HEAD');
    if (originHead?.startsWith('refs/remotes/')) return originHead.slice('refs/remotes/'.length);
    return candidates.find((c) => commits.has(full(c)));
  }
}
