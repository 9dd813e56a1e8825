import { promises as fs } from 'node:fs';
import * as path from 'node:path';

const SKIP = new Set(['node_modules', '.git', '.model-store']);

/** `*` and `?` within one path segment, `**` across segments. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') {
      const slash = pattern[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function isGlob(pattern: string): boolean {
  return /[*?]/.test(pattern);
}

/** Files under cwd whose relative path (with '/') matches the pattern, sorted. */
export async function globFiles(cwd: string, pattern: string): Promise<string[]> {
  const normalized = pattern.replace(/^\.\//, '');
  const re = globToRegExp(normalized);
  // start from the fixed part of the pattern, so a glob in one folder does not walk the whole repo
  const fixed = normalized.split('/');
  const firstWild = fixed.findIndex((p) => isGlob(p));
  const base = fixed.slice(0, firstWild).join('/');
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(path.join(cwd, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (SKIP.has(e.name)) continue;
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(child);
      else if (e.isFile() && re.test(child)) out.push(child);
    }
  };
  await walk(base);
  return out.sort();
}
