import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { configToml, TempRepo } from '../helpers/git-repo';

const ROOT = path.resolve(__dirname, '../..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
};

/**
 * The install path a user has today: the `npm pack` tarball (the one the release workflow attaches to each
 * GitHub release), installed into an empty project without dev dependencies. Proves the `files` list and
 * `bin` of package.json: a file left out of the tarball fails here, not on a user's machine.
 */
describe('the npm pack tarball installs and runs on its own', () => {
  let bin: string;

  beforeAll(() => {
    const out = mkdtempSync(path.join(tmpdir(), 'mp-pack-'));
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: ROOT, encoding: 'utf8' }),
    ) as { filename: string; files: { path: string }[] }[];
    const tgz = path.join(out, packed[0].filename);
    expect(packed[0].files.map((f) => f.path)).toEqual(
      expect.arrayContaining(['dist/cli/index.js', 'dist/lib/index.js']),
    );
    const prefix = mkdtempSync(path.join(tmpdir(), 'mp-install-'));
    writeFileSync(path.join(prefix, 'package.json'), '{"name":"user-project","private":true}\n');
    execFileSync('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', tgz], {
      cwd: prefix,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    bin = path.join(prefix, 'node_modules', '.bin', 'model-pipeline');
    // no dev dependency came along
    for (const dev of Object.keys(pkg.devDependencies))
      expect(existsSync(path.join(prefix, 'node_modules', dev))).toBe(false);
  }, 300_000);

  it('--version prints the package version', () => {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('needs-model runs on a repository of its own', () => {
    const repo = new TempRepo();
    repo.write('search-config.toml', configToml('1.0.0'));
    repo.commit('model');
    const r = spawnSync(bin, ['needs-model', '--local', '--json'], {
      cwd: repo.dir,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir() },
    });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { outputs: Record<string, unknown> };
    expect(out.outputs['needs-model']).toBe(true);
    expect(out.outputs['model-prefix']).toBe(`1.0.0-${repo.head().slice(0, 7)}/`);
  });
});
