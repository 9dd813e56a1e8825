import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { allOptions } from '../../src/commands';
import { DEFAULT_REGION } from '../../src/core/region';
import { OTHER_VARIABLES } from '../../src/runner';

/** Every .ts file under src/, with comments removed (they may mention defaults freely). */
function sources(): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith('.ts'))
        out.push({
          file: path.relative(process.cwd(), full),
          text: readFileSync(full, 'utf8')
            .replace(/\/\*[\s\S]*?\*\//g, '')
            .replace(/^\s*\/\/.*$/gm, ''),
        });
    }
  };
  walk(path.join(__dirname, '../../src'));
  return out;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('option defaults are written once, in the option table', () => {
  const files = sources();
  const withDefault = allOptions().filter((o) => o.default !== undefined && o.default !== '');

  it('no code falls back to a literal after reading an option that has a default', () => {
    const found: string[] = [];
    for (const o of withDefault) {
      // options.string('max-runtime') ?? '6h', opt.string('train-command')?.trim() || 'make train', int('x') ?? 1
      const read = new RegExp(
        `\\.(?:string|require|int)\\('${escape(o.name)}'\\)(?:\\?\\.\\w+\\(\\))?\\s*(?:\\?\\?|\\|\\|)\\s*(?:['"\`]|\\d)`,
      );
      for (const f of files) if (read.test(f.text)) found.push(`${f.file}: fallback on ${o.name}`);
    }
    expect(found).toEqual([]);
  });

  it("no code repeats a table default as a `?? '...'` / `|| '...'` fallback", () => {
    const found: string[] = [];
    for (const o of withDefault) {
      if (o.default!.length < 2 || ['true', 'false'].includes(o.default!)) continue;
      const fallback = new RegExp(`(?:\\?\\?|\\|\\|)\\s*['"\`]${escape(o.default!)}['"\`]`);
      for (const f of files)
        if (fallback.test(f.text)) found.push(`${f.file}: ${o.name} default ${o.default}`);
    }
    expect(found).toEqual([]);
  });

  it(`the default region ${DEFAULT_REGION} is a code literal only in src/core/region.ts`, () => {
    const literal = new RegExp(`['"\`]${escape(DEFAULT_REGION)}['"\`]`);
    const found = files
      // the orb's generated usage examples show a region on purpose
      .filter(
        (f) =>
          f.file !== path.join('src', 'core', 'region.ts') && !f.file.startsWith(path.join('src', 'meta')),
      )
      .filter((f) => literal.test(f.text))
      .map((f) => f.file);
    expect(found).toEqual([]);
  });

  it('the code reads no MODEL_PIPELINE_* variable past the option table (others are listed as known)', () => {
    const options = new Set(allOptions().flatMap((o) => o.env ?? []));
    const found: string[] = [];
    for (const f of files) {
      for (const m of f.text.matchAll(/env\.(MODEL_PIPELINE_[A-Z0-9_]+)/g))
        if (options.has(m[1])) found.push(`${f.file} reads ${m[1]} around the option table`);
        else if (!(OTHER_VARIABLES as readonly string[]).includes(m[1]))
          found.push(`${f.file} reads ${m[1]}, which is no option (not in help, README or typo checks)`);
    }
    expect(found).toEqual([]);
  });
});
