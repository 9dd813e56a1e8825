import { parseSshCidrSetting, type SshCidrSetting } from '../core/ssh-ingress';
import type { CommandContext } from './types';

/** train's `ssh-cidr`, checked before anything is launched (bad input: one line, exit 2). */
export function readSshCidr(ctx: CommandContext): SshCidrSetting {
  return parseSshCidrSetting(ctx.options.list('ssh-cidr'));
}

/** The CIDR blocks of the launch request: `auto` asks the runner's public address now. */
export async function sshCidrsFor(
  ctx: CommandContext,
  setting: SshCidrSetting,
): Promise<string[] | undefined> {
  if (setting.mode === 'none') return undefined;
  if (setting.mode === 'cidrs') return setting.cidrs;
  const cidr = await ctx.deps.publicAddress().lookup(ctx.signal);
  ctx.deps.logger.info(`ssh-cidr auto: port 22 will be open to ${cidr} (this runner) for this run`);
  return [cidr];
}
