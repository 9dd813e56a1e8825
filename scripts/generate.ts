// Writes every file generated from the option tables: action.yml, the README tables, the orb sources
// (orb/src/commands, jobs, examples) and the packed orb/orb.yml, and the README's transcript of the main
// job. Run with `npm run gen`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { generatedFiles, ORB_SRC } from '../src/meta/generated';
import { isGeneratedOrbFile } from '../src/meta/orb';
import { replaceSection } from '../src/meta/readme';
import { freshBundleTranscript } from '../src/meta/transcript';

const root = process.cwd();
const files = generatedFiles(root);
// the README's transcript: a real run of its quick-start command through a fresh bundle of src/;
// test/e2e/readme-transcript.test.ts fails when the bundled CLI (dist/) prints something else
if (!process.argv.includes('--no-transcript')) {
  files.set('README.md', replaceSection(files.get('README.md')!, 'transcript', freshBundleTranscript(root)));
}
let changed = 0;
for (const [rel, text] of files) {
  const full = path.join(root, rel);
  if (existsSync(full) && readFileSync(full, 'utf8') === text) continue;
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, text);
  changed++;
  console.log(`wrote ${rel}`);
}
// a command that left the dispatch table must not leave its orb command behind
for (const dir of ['commands', 'jobs', 'examples']) {
  const full = path.join(root, ORB_SRC, dir);
  if (!existsSync(full)) continue;
  for (const name of readdirSync(full)) {
    const rel = `${ORB_SRC}/${dir}/${name}`;
    if (files.has(rel) || !isGeneratedOrbFile(readFileSync(path.join(full, name), 'utf8'))) continue;
    rmSync(path.join(full, name));
    changed++;
    console.log(`removed ${rel}`);
  }
}
execFileSync(process.execPath, [path.join(root, 'scripts/pack-orb.mjs')], { stdio: 'inherit', cwd: root });
console.log(changed === 0 ? 'generated files were up to date' : `${changed} generated file(s) changed`);
