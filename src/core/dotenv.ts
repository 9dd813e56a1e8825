import { UserError } from './errors';

/** The value part of a line: quoted (escapes in double quotes only) or bare up to a ` #` comment. */
function parseValue(raw: string): string | undefined {
  const quote = raw[0];
  if (quote !== '"' && quote !== "'") return raw.replace(/\s+#.*$/, '').trim();
  let out = '';
  for (let i = 1; i < raw.length; i++) {
    const c = raw[i];
    if (c === quote) {
      // only a comment may follow the closing quote
      return /^\s*(#.*)?$/.test(raw.slice(i + 1)) ? out : undefined;
    }
    if (quote === '"' && c === '\\' && i + 1 < raw.length) {
      const next = raw[++i];
      out += next === 'n' ? '\n' : next === 't' ? '\t' : next === 'r' ? '\r' : next;
    } else {
      out += c;
    }
  }
  return undefined; // no closing quote
}

/**
 * Parses a dotenv-style settings file (KEY=value, `export` allowed, # comments, single or double quotes).
 * Kept strict: a line that is not an assignment is an error naming the line, not silently skipped. Errors
 * never show the line's text: a settings file holds secrets, and the error is printed before they are masked.
 */
export function parseDotenv(text: string, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m)
      throw new UserError(
        `${path}:${i + 1}: expected KEY=value (KEY: letters, digits, _; not starting with a digit); the line is not shown, it may hold a secret`,
      );
    const value = parseValue(m[2]);
    if (value === undefined) {
      throw new UserError(
        `${path}:${i + 1}: the quoted value of ${m[1]} has no closing quote, or text after it (the value is not shown)`,
      );
    }
    out[m[1]] = value;
  });
  return out;
}
