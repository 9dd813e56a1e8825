import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** The shipped Packer template and provision script, checked by the real tools (packer, shellcheck). */
const TEMPLATE = path.resolve(__dirname, '../../templates/packer');
const VARS = ['-var', 'ami_version=1.0.0', '-var', 'base_ami=ami-0123456789abcdef0'];

function packer(args: string[], cwd = TEMPLATE): { code: number; out: string } {
  const r = spawnSync('packer', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, CHECKPOINT_DISABLE: '1' },
  });
  return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

describe('templates/packer', () => {
  test('packer fmt -check is clean', () => {
    const r = packer(['fmt', '-check', '.']);
    expect(r).toEqual({ code: 0, out: '' });
  });

  test('packer validate accepts it with the variables build-ami passes', () => {
    const r = packer(['validate', ...VARS, '.']);
    expect(r.out).not.toMatch(/Error/);
    expect(r.code).toBe(0);
  });

  test('packer validate rejects it without the required variables (the check is real)', () => {
    const r = packer(['validate', '.']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/ami_version|base_ami/);
  });

  test('a builder cannot leak: terminate on shutdown, sweepable run tags, watchdog in the script', () => {
    const hcl = readFileSync(path.join(TEMPLATE, 'ami.pkr.hcl'), 'utf8');
    expect(hcl).toMatch(/shutdown_behavior\s*=\s*"terminate"/);
    expect(hcl).toMatch(
      /run_tags\s*=\s*{[^}]*"model-pipeline"\s*=\s*"true"[^}]*"model-pipeline:expires-at"/s,
    );
    const script = readFileSync(path.join(TEMPLATE, 'provision.sh'), 'utf8');
    expect(script).toMatch(/shutdown -P "\+\$\{WATCHDOG_MINUTES\}"/);
  });

  test('network and disk: port 22 only from ssh_source_cidrs, no marker tag', () => {
    const hcl = readFileSync(path.join(TEMPLATE, 'ami.pkr.hcl'), 'utf8');
    expect(hcl).toMatch(/temporary_security_group_source_cidrs\s*=\s*var\.ssh_source_cidrs/);
    expect(hcl).toMatch(/security_group_id\s*=\s*var\.security_group_id/);
    // Packer tags after creation; the IAM policy lets only build-ami add the marker (docs/iam.md)
    expect(hcl).toMatch(/\btags\s*=\s*{(?![^}]*"model-pipeline"\s*=)[^}]*}/s);
    expect(hcl).toMatch(/snapshot_tags\s*=\s*{(?![^}]*"model-pipeline"\s*=)[^}]*}/s);
  });

  test('the plugin declaration for newer packer is valid HCL and packer fmt clean', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-plugins-'));
    try {
      writeFileSync(
        path.join(dir, 'plugins.pkr.hcl'),
        readFileSync(path.join(TEMPLATE, 'plugins.pkr.hcl.example')),
      );
      expect(packer(['fmt', '-check', '.'], dir)).toEqual({ code: 0, out: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a broken copy fails validate (the test can fail)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-tpl-'));
    try {
      cpSync(TEMPLATE, dir, { recursive: true });
      const file = path.join(dir, 'ami.pkr.hcl');
      writeFileSync(
        file,
        readFileSync(file, 'utf8').replace(
          'shutdown_behavior = "terminate"',
          'shutdown_behavior = "explode"',
        ),
      );
      const r = packer(['validate', ...VARS, '.'], dir);
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/shutdown_behavior/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('provision.sh is shellcheck clean', () => {
    expect(() =>
      execFileSync('shellcheck', [path.join(TEMPLATE, 'provision.sh')], { encoding: 'utf8' }),
    ).not.toThrow();
  });
});

describe('examples/.packer/ami-version.txt', () => {
  test('holds one semver version line', () => {
    const text = readFileSync(path.resolve(__dirname, '../../examples/.packer/ami-version.txt'), 'utf8');
    const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
    expect(lines).toEqual(['1.0.0']);
  });
});
