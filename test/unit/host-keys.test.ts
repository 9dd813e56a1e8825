import { UserError } from '../../src/core/errors';
import {
  fingerprintOf,
  keysMatchingFingerprints,
  knownHostsText,
  normalizeKeyLine,
  parseHostKeyOption,
} from '../../src/core/host-keys';

// a real ed25519 key and its fingerprint as `ssh-keygen -lf` prints it
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqPI/wJPWGtdwSYKivjHlXhuwxTIYlx74QnEVnjisq4';
const OTHER = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHAtjv6LoTfh2xdR5CbhlBjlwbUaK9sNTzT5x5y9hsRz';

describe('host keys', () => {
  it('computes the SHA256 fingerprint ssh-keygen shows', () => {
    expect(fingerprintOf(KEY)).toBe('SHA256:a5jy+qssqgenA9rzDmQv+lyL+p0eWq0xY+SQbQBlSSk');
    expect(fingerprintOf(`${KEY} root@host`)).toBe(fingerprintOf(KEY));
    expect(fingerprintOf(KEY)).not.toBe(fingerprintOf(OTHER));
  });

  it.each([
    [KEY, KEY],
    [`${KEY} comment here`, KEY],
    [`[127.0.0.1]:2222 ${KEY}`, KEY],
    ['not a key', undefined],
    ['ssh-ed25519', undefined],
  ])('normalizeKeyLine(%j)', (line, expected) => {
    expect(normalizeKeyLine(line)).toBe(expected);
  });

  it('reads the ssh-host-key option: key lines and fingerprints', () => {
    const fp = fingerprintOf(OTHER);
    expect(parseHostKeyOption(`${KEY} root@x\n${fp}\n# comment\n`)).toEqual({
      keys: [KEY],
      fingerprints: [fp],
    });
    expect(parseHostKeyOption(`${fp}=, ${fingerprintOf(KEY)}`).fingerprints).toEqual([
      fp,
      fingerprintOf(KEY),
    ]);
  });

  it('names the setting when the value is neither', () => {
    expect(() => parseHostKeyOption('AAAAC3Nza')).toThrow(UserError);
    expect(() => parseHostKeyOption('yes')).toThrow(/ssh-host-key: "yes" is neither/);
  });

  it('keeps only scanned keys with a trusted fingerprint', () => {
    const scanned = [`127.0.0.1 ${KEY}`, `127.0.0.1 ${OTHER}`, '# 127.0.0.1:22 SSH-2.0-OpenSSH_9.2'];
    expect(keysMatchingFingerprints(scanned, [fingerprintOf(OTHER)])).toEqual([OTHER]);
    expect(keysMatchingFingerprints(scanned, ['SHA256:' + 'A'.repeat(43)])).toEqual([]);
  });

  it('writes known_hosts lines for the alias', () => {
    expect(knownHostsText('alias', [`${KEY} c`, 'junk', OTHER])).toBe(`alias ${KEY}\nalias ${OTHER}\n`);
    expect(knownHostsText('alias', [])).toBe('');
  });
});
