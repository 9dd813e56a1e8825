import { parseSshCidrSetting, type SshCidrSetting } from '../core/ssh-ingress';
import type { CommandContext } from './types';
import { backendOf } from '../wiring';

/** train's `ssh-cidr`, checked before anything is launched (bad input: one line, exit 2). */
export function readSshCidr(ctx: CommandContext): SshCidrSetting {
  return parseSshCidrSetting(ctx.options.list('ssh-cidr'));
}

/** The CIDR blocks of the launch request: `auto` asks the runner's public address now. */
export async function sshCidrsFor(
  ctx: CommandContext,
  setting: SshCidrSetting,
): Promise<string[] | undefined> {
  // the local backend has no security group (and no reason to ask the internet for an address)
  if (setting.mode === 'none' || backendOf(ctx.options) === 'local') return undefined;
  if (setting.mode === 'cidrs') return setting.cidrs;
  const cidr = await ctx.deps.publicAddress().lookup(ctx.signal);
  ctx.deps.logger.info(`ssh-cidr auto: port 22 will be open to ${cidr} (this runner) for this run`);
  return [cidr];
}
