/**
 * cloud-init prints the instance's SSH host keys to the serial console at first boot. Reading them from
 * GetConsoleOutput (an authenticated AWS API, not the network path SSH uses) lets the runner verify the host
 * key instead of trusting the first key it sees.
 */

export interface ConsoleFingerprint {
  bits?: number;
  /** e.g. SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU */
  fingerprint: string;
  /** ED25519, ECDSA, RSA as cloud-init prints it. */
  type?: string;
}

export interface ConsoleHostKeys {
  fingerprints: ConsoleFingerprint[];
  /** Public key lines, `ssh-ed25519 AAAA…` (the comment dropped), ready for known_hosts. */
  publicKeys: string[];
}

const FP_BEGIN = '-----BEGIN SSH HOST KEY FINGERPRINTS-----';
const FP_END = '-----END SSH HOST KEY FINGERPRINTS-----';
const KEYS_BEGIN = '-----BEGIN SSH HOST KEY KEYS-----';
const KEYS_END = '-----END SSH HOST KEY KEYS-----';

/** Lines of the last complete begin/end block; the console's line prefixes (`ec2: `, timestamps) stay. */
function block(lines: string[], begin: string, end: string): string[] | undefined {
  let start = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i].includes(begin)) {
      start = i;
      break;
    }
  }
  if (start < 0) return undefined;
  const out: string[] = [];
  for (let i = start + 1; i < lines.length; i++) {
    if (lines[i].includes(end)) return out;
    out.push(lines[i]);
  }
  return undefined; // still being written
}

const FP_RE = /(?:^|\s)(?:(\d+)\s+)?((?:SHA256|MD5):[A-Za-z0-9+/=:]+)(?:.*\((\w+)\))?/;
const KEY_RE =
  /(?:^|\s)((?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp(?:256|384|521)|sk-[\w.-]+@openssh\.com)\s+[A-Za-z0-9+/]+=*)/;

/** The host keys in a console log, or undefined while cloud-init has not printed them (yet). */
export function parseConsoleHostKeys(consoleText: string): ConsoleHostKeys | undefined {
  const lines = consoleText.replace(/\r/g, '').split('\n');
  const fpLines = block(lines, FP_BEGIN, FP_END);
  const keyLines = block(lines, KEYS_BEGIN, KEYS_END);
  const fingerprints: ConsoleFingerprint[] = [];
  for (const line of fpLines ?? []) {
    const m = FP_RE.exec(line);
    if (!m) continue;
    fingerprints.push({
      fingerprint: m[2],
      ...(m[1] ? { bits: Number(m[1]) } : {}),
      ...(m[3] ? { type: m[3].toUpperCase() } : {}),
    });
  }
  const publicKeys: string[] = [];
  for (const line of keyLines ?? []) {
    const m = KEY_RE.exec(line);
    if (m) publicKeys.push(m[1].replace(/\s+/, ' '));
  }
  if (fingerprints.length === 0 && publicKeys.length === 0) return undefined;
  return { fingerprints, publicKeys };
}
