import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { packer16Copy, TEMPLATE_DIR as TEMPLATE } from '../helpers/packer-template';

/**
 * The shipped Packer template and provision script, checked by the real tools (packer, shellcheck). The
 * template is written for the Packer build-ami installs (1.13.1, amazon plugin pinned); the packer here is
 * 1.6.6, which validates a copy without the three newer-only pieces (packer16Copy) and shows that it reads
 * those pieces as real settings; their content is asserted on the text.
 */
const VARS = [
  '-var',
  'ami_version=1.0.0',
  '-var',
  'base_ami=ami-0123456789abcdef0',
  '-var',
  'image_tags={"model-pipeline:git-sha"="abc"}',
];

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

  test('packer validate accepts it with the variables build-ami passes (1.6 copy)', () => {
    const dir = packer16Copy();
    try {
      const r = packer(['validate', ...VARS, '.'], dir);
      expect(r.out).not.toMatch(/Error/);
      expect(r.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('packer 1.6 reads metadata_options as a real block of the builder (not a comment)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-tpl-'));
    try {
      cpSync(TEMPLATE, dir, { recursive: true });
      rmSync(path.join(dir, 'plugins.pkr.hcl'));
      const r = packer(['validate', ...VARS, '.'], dir);
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/"metadata_options" are not expected here/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('IMDSv2, an encrypted root volume, and port 22 never open to the world', () => {
    const hcl = readFileSync(path.join(TEMPLATE, 'ami.pkr.hcl'), 'utf8');
    const block = (name: string): string => new RegExp(`\\n  ${name} \\{([^}]*)\\}`).exec(hcl)?.[1] ?? '';
    expect(block('metadata_options')).toMatch(/http_tokens\s*=\s*"required"/);
    expect(block('metadata_options')).toMatch(/http_endpoint\s*=\s*"enabled"/);
    const root = block('launch_block_device_mappings');
    expect(root).toMatch(/device_name\s*=\s*var\.root_device_name/);
    expect(root).toMatch(/encrypted\s*=\s*true/);
    // encrypt_boot would copy and deregister an untagged intermediate AMI (refused by the IAM policy)
    expect(hcl).not.toMatch(/^\s*encrypt_boot\s*=/m);
    expect(hcl).toMatch(/temporary_security_group_source_cidrs\s*=\s*var\.ssh_source_cidrs/);
    expect(hcl).toMatch(
      /temporary_security_group_source_public_ip\s*=\s*length\(var\.ssh_source_cidrs\)\s*==\s*0/,
    );
  });

  test('packer validate rejects it without the required variables (the check is real)', () => {
    const dir = packer16Copy();
    try {
      const r = packer(['validate', '.'], dir);
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/ami_version|base_ami/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a builder cannot leak: terminate on shutdown, sweepable run tags, watchdog in the script', () => {
    const hcl = readFileSync(path.join(TEMPLATE, 'ami.pkr.hcl'), 'utf8');
    expect(hcl).toMatch(/shutdown_behavior\s*=\s*"terminate"/);
    expect(hcl).toMatch(
      /run_tags\s*=\s*merge\(var\.image_tags,\s*{[^}]*"model-pipeline"\s*=\s*"true"[^}]*"model-pipeline:expires-at"/s,
    );
    const script = readFileSync(path.join(TEMPLATE, 'provision.sh'), 'utf8');
    expect(script).toMatch(/shutdown -P "\+\$\{WATCHDOG_MINUTES\}"/);
  });

  test('every tag goes on at creation (run_tags, CreateImage); nothing is tagged afterwards', () => {
    const hcl = readFileSync(path.join(TEMPLATE, 'ami.pkr.hcl'), 'utf8');
    expect(hcl).toMatch(/security_group_id\s*=\s*var\.security_group_id/);
    // Packer applies `tags` and `snapshot_tags` with CreateTags after creation: the IAM policy refuses that
    expect(hcl).not.toMatch(/^\s*(tags|snapshot_tags|ami_tags)\s*=/m);
    expect(hcl).toMatch(
      /run_tags\s*=\s*merge\(var\.image_tags,\s*{[^}]*"model-pipeline"\s*=\s*"true"[^}]*"model-pipeline:ami-version"\s*=\s*var\.ami_version/s,
    );
  });

  test('the amazon plugin is declared, pinned to a release that tags at CreateImage, and packer fmt clean', () => {
    const text = readFileSync(path.join(TEMPLATE, 'plugins.pkr.hcl'), 'utf8');
    expect(text).toMatch(/source\s*=\s*"github\.com\/hashicorp\/amazon"/);
    expect(text).toMatch(/version\s*=\s*">= 1\.3\.0, < 2\.0\.0"/);
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-plugins-'));
    try {
      writeFileSync(path.join(dir, 'plugins.pkr.hcl'), text);
      expect(packer(['fmt', '-check', '.'], dir)).toEqual({ code: 0, out: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a broken copy fails validate (the test can fail)', () => {
    const dir = packer16Copy();
    try {
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
