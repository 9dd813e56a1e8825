import { mkdirSync, promises as fs, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { PipelineError } from '../../core/errors';
import { excludeMatcher } from '../../core/excludes';
import type { ExecResult, RemoteShell } from '../../core/ports';
import { runLines } from '../system/process-lines';

export interface LocalShellOptions {
  /** Where running commands leave a pid file, so LocalCompute.terminate can kill them. */
  pidsDir?: string;
}

/**
 * The local backend's "instance": a folder standing in for the remote home. Relative remote paths resolve
 * against it, commands run there under `bash -c` in their own process group.
 */
export class LocalShell implements RemoteShell {
  readonly root: string;

  constructor(
    root: string,
    private readonly o: LocalShellOptions = {},
  ) {
    this.root = path.resolve(root);
  }

  private resolve(remotePath: string): string {
    return path.resolve(this.root, remotePath);
  }

  async waitReady(): Promise<void> {
    const st = await fs.stat(this.root).catch(() => undefined);
    if (!st?.isDirectory()) throw new PipelineError(`local instance folder ${this.root} does not exist`);
  }

  async exec(
    command: string,
    options: { timeoutSeconds?: number; signal?: AbortSignal; onOutput?: (line: string) => void },
  ): Promise<ExecResult> {
    let pidFile: string | undefined;
    try {
      const r = await runLines('bash', ['-c', command], {
        what: 'local command',
        cwd: this.root,
        detached: true,
        signal: options.signal,
        timeoutSeconds: options.timeoutSeconds,
        onLine: (line) => options.onOutput?.(line),
        onSpawn: (pid) => {
          if (!this.o.pidsDir) return;
          pidFile = path.join(this.o.pidsDir, String(pid));
          // synchronously, so a terminate right after the start already sees the process
          mkdirSync(this.o.pidsDir, { recursive: true });
          writeFileSync(pidFile, String(pid));
        },
      });
      return { exitCode: r.exitCode };
    } finally {
      if (pidFile) await fs.rm(pidFile, { force: true });
    }
  }

  /** Mirrors the folder like `rsync -a --delete`: what is excluded is neither copied nor kept. */
  async pushDir(localDir: string, remoteDir: string, excludes: string[]): Promise<void> {
    const source = path.resolve(localDir);
    const target = this.resolve(remoteDir);
    const excluded = excludeMatcher(excludes);
    await fs.rm(target, { recursive: true, force: true });
    await fs.mkdir(target, { recursive: true });
    await fs.cp(source, target, {
      recursive: true,
      preserveTimestamps: true,
      verbatimSymlinks: true,
      filter: async (src) => {
        const rel = path.relative(source, src);
        if (rel === '') return true;
        if (rel === path.relative(source, target) || this.root === path.resolve(src)) return false;
        const st = await fs.lstat(src);
        return !excluded(rel, st.isDirectory());
      },
    });
  }

  async pushFile(localFile: string, remotePath: string): Promise<void> {
    const target = this.resolve(remotePath);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.copyFile(localFile, target);
  }

  async pullFile(remotePath: string, localFile: string): Promise<void> {
    const source = this.resolve(remotePath);
    await fs.mkdir(path.dirname(path.resolve(localFile)), { recursive: true });
    try {
      await fs.copyFile(source, localFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new PipelineError(`${remotePath} does not exist in the local instance folder ${this.root}`);
      throw err;
    }
  }
}
