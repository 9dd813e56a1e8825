import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** A throwaway git repository with helpers to write files and commit, for commands that read git. */
export class TempRepo {
  readonly dir: string;

  constructor(prefix = 'mp-repo-') {
    this.dir = mkdtempSync(path.join(tmpdir(), prefix));
    this.git('init', '-q', '-b', 'main');
    this.git('config', 'user.email', 'test@example.com');
    this.git('config', 'user.name', 'Test');
    this.git('config', 'commit.gpgsign', 'false');
  }

  git(...args: string[]): string {
    return execFileSync('git', args, { cwd: this.dir, encoding: 'utf8' }).trim();
  }

  write(rel: string, content: string): this {
    const full = path.join(this.dir, rel);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, content);
    return this;
  }

  /** Commits everything and returns the full sha. */
  commit(message: string): string {
    this.git('add', '-A');
    this.git('commit', '-q', '--allow-empty', '-m', message);
    return this.git('rev-parse', 'HEAD');
  }

  checkout(...args: string[]): this {
    this.git('checkout', '-q', ...args);
    return this;
  }

  head(): string {
    return this.git('rev-parse', 'HEAD');
  }
}

export function configToml(version: string, extra = ''): string {
  return `version = "${version}"\n${extra}\n[training]\nepochs = 1\n`;
}
