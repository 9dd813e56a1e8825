import { createHash } from 'node:crypto';
import type { HostKeys } from './ports';
import { UserError } from './errors';

/**
 * Host key trust for SSH without `StrictHostKeyChecking=no`: a host key is either pinned as a public key line
 * or named by its fingerprint (`SHA256:…`, as EC2 console output and `ssh-keygen -l` print it).
 */

const KEY_TYPE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9-]+@openssh\.com)$/;
const SHA256_FP = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
const MD5_FP = /^(MD5:)?([0-9a-f]{2}:){15}[0-9a-f]{2}$/i;

/** `type base64` from a public key line, an authorized_keys line or a known_hosts line; undefined otherwise. */
export function normalizeKeyLine(line: string): string | undefined {
  const tokens = line.trim().split(/\s+/);
  for (let i = 0; i + 1 < tokens.length; i++) {
    if (KEY_TYPE.test(tokens[i]) && /^[A-Za-z0-9+/]+={0,2}$/.test(tokens[i + 1])) {
      return `${tokens[i]} ${tokens[i + 1]}`;
    }
  }
  return undefined;
}

/** `SHA256:<base64 without padding>` of a key line, the form `ssh-keygen -lf` prints. */
export function fingerprintOf(keyLine: string): string {
  const key = normalizeKeyLine(keyLine);
  if (!key) throw new Error(`not an SSH public key: ${keyLine.slice(0, 40)}`);
  const blob = Buffer.from(key.split(' ')[1], 'base64');
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

function md5FingerprintOf(keyLine: string): string {
  const key = normalizeKeyLine(keyLine)!;
  const hex = createHash('md5')
    .update(Buffer.from(key.split(' ')[1], 'base64'))
    .digest('hex');
  return hex.match(/../g)!.join(':');
}

function normalizeFingerprint(fp: string): string {
  const t = fp.trim();
  if (SHA256_FP.test(t)) return t.replace(/=$/, '');
  if (MD5_FP.test(t)) return t.replace(/^MD5:/i, '').toLowerCase();
  return t;
}

export function isFingerprint(text: string): boolean {
  const t = text.trim();
  return SHA256_FP.test(t) || MD5_FP.test(t);
}

/**
 * The ssh-host-key setting: one or more public key lines and/or fingerprints, one per line (or comma
 * separated for fingerprints). Anything else is a typo the user must hear about.
 */
export function parseHostKeyOption(value: string, setting = 'ssh-host-key'): HostKeys {
  const keys: string[] = [];
  const fingerprints: string[] = [];
  for (const raw of value.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const key = normalizeKeyLine(line);
    if (key) {
      keys.push(key);
      continue;
    }
    for (const part of line.split(/[,\s]+/).filter((p) => p !== '')) {
      if (!isFingerprint(part)) {
        throw new UserError(
          `${setting}: "${part.slice(0, 60)}" is neither a public key line (ssh-ed25519 AAAA…) nor a SHA256: fingerprint`,
        );
      }
      fingerprints.push(normalizeFingerprint(part));
    }
  }
  return { keys, fingerprints };
}

/** The scanned keys whose fingerprint is one of the trusted fingerprints. */
export function keysMatchingFingerprints(scanned: string[], fingerprints: string[]): string[] {
  const wanted = new Set(fingerprints.map(normalizeFingerprint));
  const out: string[] = [];
  for (const line of scanned) {
    const key = normalizeKeyLine(line);
    if (!key) continue;
    if (wanted.has(fingerprintOf(key)) || wanted.has(md5FingerprintOf(key))) out.push(key);
  }
  return out;
}

/** known_hosts content naming the host by an alias (ssh -o HostKeyAlias), so host and port do not matter. */
export function knownHostsText(alias: string, keys: string[]): string {
  const lines = keys.map((k) => normalizeKeyLine(k)).filter((k): k is string => k !== undefined);
  return lines.map((k) => `${alias} ${k}`).join('\n') + (lines.length ? '\n' : '');
}

export function hasHostKeys(h: HostKeys | undefined): h is HostKeys {
  return h !== undefined && h.keys.length + h.fingerprints.length > 0;
}
