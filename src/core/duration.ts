import { UserError } from './errors';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Seconds in a duration such as `6h`, `90m`, `1h30m`, `45s`, `2d` or a bare number of seconds.
 * `what` names the setting in the error, so users know which value to fix.
 */
export function parseDuration(text: string, what = 'duration'): number {
  const raw = text.trim().toLowerCase();
  if (/^\d+$/.test(raw)) {
    const n = Number.parseInt(raw, 10);
    if (n > 0) return n;
  } else if (/^(\d+\s*[smhd]\s*)+$/.test(raw)) {
    let total = 0;
    for (const m of raw.matchAll(/(\d+)\s*([smhd])/g))
      total += Number.parseInt(m[1], 10) * UNIT_SECONDS[m[2]];
    if (total > 0) return total;
  }
  throw new UserError(
    `${what} must be a positive duration such as 6h, 90m, 1h30m or 3600 (seconds); got "${text}"`,
  );
}

/** Short human form: 6h, 1h30m, 45s. */
export function formatDuration(seconds: number): string {
  let left = Math.max(0, Math.round(seconds));
  if (left === 0) return '0s';
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(left / size);
    if (n > 0) {
      parts.push(`${n}${unit}`);
      left -= n * size;
    }
  }
  return parts.join('');
}
