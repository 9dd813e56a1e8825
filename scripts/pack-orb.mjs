// Packs the orb source (orb/src, CircleCI Orb-Template layout) into one orb/orb.yml, like `circleci orb pack`:
// @orb.yml at the top, each file of commands/, jobs/, executors/ and examples/ under its name, and every
// value that is exactly `<<include(path)>>` replaced by that file's text (path relative to orb/src).
// Usage: node scripts/pack-orb.mjs [--src orb/src] [--out orb/orb.yml] [--stdout]
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';

const INCLUDE = /^<<\s*include\(([^)]+)\)\s*>>$/;
const SECTIONS = ['commands', 'jobs', 'executors', 'examples'];

function fail(message) {
  process.stderr.write(`pack-orb: ${message}\n`);
  process.exit(1);
}

function parseFile(file) {
  try {
    return parse(readFileSync(file, 'utf8'));
  } catch (err) {
    fail(`${file}: ${err.message}`);
  }
}

function resolveIncludes(value, src, where) {
  if (typeof value === 'string') {
    const m = INCLUDE.exec(value.trim());
    if (!m) {
      if (value.includes('<<include(')) fail(`${where}: <<include(...)>> must be the whole value`);
      return value;
    }
    const file = path.join(src, m[1].trim());
    if (!existsSync(file)) fail(`${where}: included file ${m[1]} not found under ${src}`);
    return readFileSync(file, 'utf8');
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveIncludes(v, src, `${where}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, resolveIncludes(v, src, `${where}.${k}`)]),
    );
  }
  return value;
}

export function packOrb(src) {
  const head = path.join(src, '@orb.yml');
  if (!existsSync(head)) fail(`${head} not found`);
  const orb = parseFile(head) ?? {};
  for (const section of SECTIONS) {
    const dir = path.join(src, section);
    if (!existsSync(dir)) continue;
    const entries = readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
    if (entries.length === 0) continue;
    orb[section] = {};
    for (const f of entries) {
      const name = f.replace(/\.ya?ml$/, '');
      if (orb[section][name]) fail(`${section}/${f}: ${name} defined twice`);
      orb[section][name] = resolveIncludes(parseFile(path.join(dir, f)), src, `${section}/${f}`);
    }
  }
  return (
    '# Packed by scripts/pack-orb.mjs (npm run orb:pack) from orb/src: edit orb/src or the option tables, not this file.\n' +
    stringify(orb, { lineWidth: 0 })
  );
}

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const src = opt('--src', 'orb/src');
const out = opt('--out', 'orb/orb.yml');
const text = packOrb(src);
if (args.includes('--stdout')) process.stdout.write(text);
else {
  const before = existsSync(out) ? readFileSync(out, 'utf8') : '';
  if (before !== text) {
    writeFileSync(out, text);
    console.log(`wrote ${out}`);
  }
}
