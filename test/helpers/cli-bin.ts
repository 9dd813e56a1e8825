import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [full] : [];
  });
}

/**
 * A `model-pipeline` executable built from the current src/ (transpiled, not bundled), so tests that run
 * the CLI as a process see today's code without `npm run bundle`. Returns the folder to put on PATH.
 */
export function buildCliBin(): string {
  const out = mkdtempSync(path.join(tmpdir(), 'mp-cli-'));
  for (const file of tsFiles(path.join(ROOT, 'src'))) {
    const rel = path.relative(ROOT, file);
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
        resolveJsonModule: true,
      },
      fileName: file,
    }).outputText;
    const dest = path.join(out, 'lib', rel.replace(/\.ts$/, '.js'));
    mkdirSync(path.dirname(dest), { recursive: true });
    writeFileSync(dest, js);
  }
  copyFileSync(path.join(ROOT, 'package.json'), path.join(out, 'lib', 'package.json'));
  const bin = path.join(out, 'bin');
  mkdirSync(bin);
  const exe = path.join(bin, 'model-pipeline');
  writeFileSync(
    exe,
    [
      '#!/usr/bin/env bash',
      `export NODE_PATH=${JSON.stringify(path.join(ROOT, 'node_modules'))}`,
      `exec ${JSON.stringify(process.execPath)} -e 'require(process.argv[1]).runCliProcess()' ${JSON.stringify(path.join(out, 'lib/src/entry.js'))} "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(exe, 0o755);
  return bin;
}
