import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;

describe('the npm package', () => {
  it('holds only what the CLI runs: its entry, the bundle and its vendor files, the README', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, npm_config_loglevel: 'silent' },
    });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path).sort();
    // dist/lib/vendor: packages only some commands load, on first use (scripts/bundle.mjs)
    expect(files).toEqual([
      'README.md',
      'dist/cli/index.js',
      'dist/lib/index.js',
      'dist/lib/vendor/client-cloudwatch-logs.js',
      'dist/lib/vendor/client-ec2.js',
      'dist/lib/vendor/client-sagemaker.js',
      'dist/lib/vendor/http-client.js',
      'dist/lib/vendor/nested-clients-signin.js',
      'dist/lib/vendor/nested-clients-sso-oidc.js',
      'dist/lib/vendor/nested-clients-sso.js',
      'dist/lib/vendor/nested-clients-sts.js',
      'dist/lib/vendor/tool-cache.js',
      'package.json',
    ]);
  });

  it('keeps the bundle every command loads under 1 MB (compiling it is most of an action step without a code cache)', () => {
    // 1.5 MB with the full zod and the SDK's CommonJS builds; bench/RESULTS.md has the cold-start rows
    expect(statSync(path.join(ROOT, 'dist/lib/index.js')).size).toBeLessThan(1_000_000);
  });

  it('installs nothing at run time: the bundle is self-contained, so npx fetches no dependency', () => {
    expect(pkg.dependencies).toBeUndefined();
    expect(pkg.optionalDependencies).toBeUndefined();
    expect(pkg.peerDependencies).toBeUndefined();
    expect(pkg.bin).toEqual({ 'model-pipeline': 'dist/cli/index.js' });
  });

  it('declares no package the code never imports (@actions/github, @actions/exec were unused)', () => {
    const dev = Object.keys(pkg.devDependencies as Record<string, string>);
    expect(dev).not.toContain('@actions/github');
    expect(dev).not.toContain('@actions/exec');
  });

  it('needs node 22 or later', () => {
    expect(pkg.engines).toEqual({ node: '>=22' });
  });
});
