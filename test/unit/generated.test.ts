import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { COMMANDS, allOptions, allOutputs } from '../../src/commands';
import { generatedFiles, ORB_PACKED, ORB_SRC } from '../../src/meta/generated';
import { isGeneratedOrbFile } from '../../src/meta/orb';
import { replaceSection } from '../../src/meta/readme';
import { ROOT } from '../helpers/orb';

const STALE = 'stale: run `npm run gen` and commit the result';

function packOrb(args: string[]) {
  return spawnSync(process.execPath, [path.join(ROOT, 'scripts/pack-orb.mjs'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  });
}

describe('generated files match the option tables', () => {
  const files = generatedFiles(ROOT);

  it.each([...files.keys()])('%s', (rel) => {
    const full = path.join(ROOT, rel);
    const onDisk = existsSync(full) ? readFileSync(full, 'utf8') : `(missing: ${STALE})`;
    expect(onDisk).toBe(files.get(rel));
  });

  it('leaves no generated orb file whose command is gone', () => {
    for (const dir of ['commands', 'jobs', 'examples']) {
      for (const name of readdirSync(path.join(ROOT, ORB_SRC, dir))) {
        const rel = `${ORB_SRC}/${dir}/${name}`;
        if (isGeneratedOrbFile(readFileSync(path.join(ROOT, rel), 'utf8')))
          expect(files.has(rel) ? rel : STALE).toBe(rel);
      }
    }
  });

  it('orb/orb.yml is the packed orb/src', () => {
    const r = packOrb(['--stdout']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(path.join(ROOT, ORB_PACKED), 'utf8')).toBe(r.stdout);
  });

  it('action.yml has one input per option and one output per output', () => {
    const action = parse(files.get('action.yml')!) as { inputs: object; outputs: object };
    expect(Object.keys(action.inputs).sort()).toEqual(['command', ...allOptions().map((o) => o.name)].sort());
    expect(Object.keys(action.outputs).sort()).toEqual(
      allOutputs()
        .map((o) => o.name)
        .sort(),
    );
  });

  it('the README lists every command, option and output', () => {
    const readme = files.get('README.md')!;
    for (const c of Object.keys(COMMANDS)) expect(readme).toContain(`| \`${c}\` |`);
    for (const o of allOptions()) expect(readme).toContain(`| \`${o.name}\``);
    for (const o of allOutputs()) expect(readme).toContain(`| \`${o.name}\` |`);
  });

  it('the README keeps its two fresh-machine commands', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('npm ci && bash examples/local-pipeline.sh');
    expect(readme).toContain('bash scripts/install-test-deps.sh && npm ci && npm test');
  });
});

describe('generator building blocks', () => {
  it('replaceSection rewrites between markers only, and names missing markers', () => {
    const text = 'a\n<!-- x:start -->\nold\n<!-- x:end -->\nb\n';
    expect(replaceSection(text, 'x', 'new')).toBe('a\n<!-- x:start -->\nnew\n<!-- x:end -->\nb\n');
    expect(() => replaceSection('no markers', 'x', 'new')).toThrow(/x:start/);
  });

  it('pack-orb resolves includes and refuses a missing one', () => {
    const src = mkdtempSync(path.join(tmpdir(), 'mp-orbsrc-'));
    mkdirSync(path.join(src, 'commands'));
    mkdirSync(path.join(src, 'scripts'));
    writeFileSync(path.join(src, '@orb.yml'), 'version: 2.1\ndescription: test\n');
    writeFileSync(path.join(src, 'scripts/hi.sh'), 'echo hi\n');
    writeFileSync(
      path.join(src, 'commands/hi.yml'),
      'description: hi\nsteps:\n  - run:\n      command: <<include(scripts/hi.sh)>>\n',
    );
    const ok = packOrb(['--src', src, '--stdout']);
    expect(ok.status).toBe(0);
    expect(parse(ok.stdout).commands.hi.steps[0].run.command).toBe('echo hi\n');
    writeFileSync(
      path.join(src, 'commands/hi.yml'),
      'description: hi\nsteps:\n  - run:\n      command: <<include(scripts/nope.sh)>>\n',
    );
    const bad = packOrb(['--src', src, '--stdout']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/commands\/hi\.yml.*scripts\/nope\.sh not found/);
  });
});
