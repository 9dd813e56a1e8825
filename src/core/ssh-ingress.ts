import { isIPv4, isIPv6 } from 'node:net';
import { UserError } from './errors';

/**
 * `ssh-cidr`: who may reach port 22 of a training instance, through a rule the tool adds to the launch's
 * security group and removes at teardown. Unset: the group is the user's and the tool changes nothing.
 */
export type SshCidrSetting = { mode: 'none' } | { mode: 'auto' } | { mode: 'cidrs'; cidrs: string[] };

/** On the instance (set at launch): the CIDRs its rule opened, space separated; teardown reads it back. */
export const TAG_SSH_CIDR = 'model-pipeline:ssh-cidr';
/** On the rule: the instance it was added for. */
export const TAG_RULE_INSTANCE = 'model-pipeline:instance-id';
export const SSH_PORT = 22;

/** A tag value holds at most 256 characters. */
const TAG_VALUE_MAX = 256;

function canonicalIpv4(cidr: string): string | undefined {
  const [addr, bits] = cidr.split('/');
  if (!isIPv4(addr) || !/^([0-9]|[12][0-9]|3[0-2])$/.test(bits)) return undefined;
  const n = addr.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  const base = n - (n % size);
  return [24, 16, 8, 0].map((s) => Math.floor(base / 2 ** s) % 256).join('.') + '/' + bits;
}

/** One CIDR block as EC2 stores it; a bare IPv4 address is its /32, an IPv6 one its /128. */
export function parseCidr(text: string, option = 'ssh-cidr'): string {
  const t = text.trim();
  if (isIPv4(t)) return `${t}/32`;
  if (isIPv6(t)) return `${t.toLowerCase()}/128`;
  const slash = t.indexOf('/');
  if (
    slash > 0 &&
    isIPv6(t.slice(0, slash)) &&
    /^([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8])$/.test(t.slice(slash + 1))
  )
    return t.toLowerCase();
  const v4 = canonicalIpv4(t);
  if (!v4) throw new UserError(`${option}: "${t}" is not an address or CIDR block like 203.0.113.7/32`);
  if (v4 !== t)
    throw new UserError(`${option}: "${t}" has host bits set; the block is ${v4} (write that, or the /32)`);
  return v4;
}

/** The option's list: empty, `auto` alone, or CIDR blocks. Bad input is one clear line (exit 2). */
export function parseSshCidrSetting(values: readonly string[]): SshCidrSetting {
  const items = values.map((v) => v.trim()).filter((v) => v !== '' && v.toLowerCase() !== 'none');
  if (items.length === 0) return { mode: 'none' };
  if (items.some((v) => v.toLowerCase() === 'auto')) {
    if (items.length > 1)
      throw new UserError(
        'ssh-cidr: `auto` stands alone (the runner’s address); list CIDR blocks without it',
      );
    return { mode: 'auto' };
  }
  const cidrs = [...new Set(items.map((v) => parseCidr(v)))];
  if (cidrs.join(' ').length > TAG_VALUE_MAX)
    throw new UserError(
      `ssh-cidr: at most ${TAG_VALUE_MAX} characters of CIDR blocks (they are tagged on the instance)`,
    );
  return { mode: 'cidrs', cidrs };
}

/** The runner's public address as a checkip service answers it (one IPv4 address), as its /32. */
export function publicAddressCidr(answer: string, source: string): string {
  const t = answer.trim();
  if (!isIPv4(t))
    throw new Error(
      `${source} did not answer with an IPv4 address (got ${JSON.stringify(t.slice(0, 40))}); set ssh-cidr to your runners' CIDR blocks instead of auto`,
    );
  return `${t}/32`;
}

/** The CIDRs an instance's tag says its rule opened. */
export function sshCidrsOfTags(tags: Record<string, string>): string[] {
  return (tags[TAG_SSH_CIDR] ?? '').split(/\s+/).filter(Boolean);
}

/** Description of the rule (EC2 allows letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*). */
export function sshRuleDescription(instanceId: string, launchToken: string | undefined): string {
  return `model-pipeline ssh to ${instanceId}${launchToken ? ` (launch ${launchToken})` : ''}`.slice(0, 255);
}
