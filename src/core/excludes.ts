/**
 * rsync-style exclude patterns, so the local backend copies exactly what rsync would send:
 * `name` matches that name at any depth, `/name` only at the top, `dir/` only folders, `*` and `?` stay
 * inside one path segment, `**` crosses segments.
 */
export function excludeMatcher(patterns: readonly string[]): (relPath: string, isDir: boolean) => boolean {
  const rules = patterns
    .map((p) => p.trim())
    .filter((p) => p !== '' && !p.startsWith('#'))
    .map((p) => {
      const dirOnly = p.endsWith('/');
      const anchored = p.startsWith('/');
      const body = p.replace(/^\/+|\/+$/g, '');
      const wholePath = anchored || body.includes('/');
      return { dirOnly, wholePath, re: globRegex(body) };
    });
  return (relPath, isDir) => {
    const rel = relPath
      .split(/[\\/]+/)
      .filter((s) => s !== '')
      .join('/');
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    return rules.some((r) => (!r.dirOnly || isDir) && r.re.test(r.wholePath ? rel : base));
  };
}

function globRegex(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
