import { parseConsoleHostKeys } from '../../src/core/console-host-keys';

const ED = 'AAAAC3NzaC1lZDI1NTE5AAAAIGb9y6kqWL5b4m3s8CwXx1m6b3I0qvQvK0n2tS3kYc1a';
const ECDSA =
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBK1hQ9s0m2bU9gH7v0p8l2m1s3m6b9cQ0Zq2YkXk8m2d7Hk0bS1m3F0a1q2w3e4r5t6y7u8i9o0p1a2s3d4f5g6h=';

const UBUNTU = `[   10.123] cloud-init[800]: Cloud-init v. 23.1 running 'modules:final'
ec2:
ec2: #############################################################
ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----
ec2: 256 SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU root@ip-10-0-1-5 (ECDSA)
ec2: 256 SHA256:u2dTGDQ3X7Ac1jYqVV8Q3tYp4PjhW1Z1n2v4d9gYtVg root@ip-10-0-1-5 (ED25519)
ec2: 3072 SHA256:Xq4bT0xK0v8vY0bqZC6Ty6i7tLxgM5lq1e2ZxXv9ZqQ root@ip-10-0-1-5 (RSA)
ec2: -----END SSH HOST KEY FINGERPRINTS-----
ec2: #############################################################
-----BEGIN SSH HOST KEY KEYS-----
ecdsa-sha2-nistp256 ${ECDSA} root@ip-10-0-1-5
ssh-ed25519 ${ED} root@ip-10-0-1-5
-----END SSH HOST KEY KEYS-----
[   11.5] cloud-init[800]: Cloud-init v. 23.1 finished
`;

describe('parseConsoleHostKeys', () => {
  it('reads the fingerprints and keys cloud-init prints on Ubuntu', () => {
    const out = parseConsoleHostKeys(UBUNTU)!;
    expect(out.fingerprints).toEqual([
      { bits: 256, fingerprint: 'SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU', type: 'ECDSA' },
      { bits: 256, fingerprint: 'SHA256:u2dTGDQ3X7Ac1jYqVV8Q3tYp4PjhW1Z1n2v4d9gYtVg', type: 'ED25519' },
      { bits: 3072, fingerprint: 'SHA256:Xq4bT0xK0v8vY0bqZC6Ty6i7tLxgM5lq1e2ZxXv9ZqQ', type: 'RSA' },
    ]);
    expect(out.publicKeys).toEqual([`ecdsa-sha2-nistp256 ${ECDSA}`, `ssh-ed25519 ${ED}`]);
  });

  it('copes with CRLF and timestamp prefixes', () => {
    const text = UBUNTU.replace(/^/gm, '[  12.000000] ').replace(/\n/g, '\r\n');
    const out = parseConsoleHostKeys(text)!;
    expect(out.fingerprints).toHaveLength(3);
    expect(out.publicKeys).toEqual([`ecdsa-sha2-nistp256 ${ECDSA}`, `ssh-ed25519 ${ED}`]);
  });

  it('uses the last complete block (a reboot prints them again)', () => {
    const second = UBUNTU.replace('47DEQ', 'ZZZZQ');
    const out = parseConsoleHostKeys(UBUNTU + second)!;
    expect(out.fingerprints[0].fingerprint).toMatch(/^SHA256:ZZZZQ/);
  });

  it.each([
    ['nothing yet', 'Booting Linux...\n'],
    [
      'only the start of a block',
      'ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: 256 SHA256:abc root@x (ED25519)\n',
    ],
    [
      'an empty block',
      '-----BEGIN SSH HOST KEY FINGERPRINTS-----\n-----END SSH HOST KEY FINGERPRINTS-----\n',
    ],
  ])('is undefined for %s', (_name, text) => {
    expect(parseConsoleHostKeys(text)).toBeUndefined();
  });
});
