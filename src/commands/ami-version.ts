import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseAmiVersion, parseAmiVersionFile } from '../core/ami-lifecycle';
import { messageOf, UserError } from '../core/errors';
import type { CommandContext } from './types';

export interface AmiVersionSource {
  version: string;
  /** The version file, relative to the working directory. */
  file: string;
  from: 'input' | 'file';
}

/**
 * The one reader of the AMI version: the ami-version setting, else ami-version-file (comment lines skipped).
 * build-ami and prune-amis need it (`required`); train uses it when the file exists and otherwise finds its
 * AMI by ami-id or ami-name-pattern.
 */
export async function readAmiVersion(ctx: CommandContext): Promise<AmiVersionSource>;
export async function readAmiVersion(
  ctx: CommandContext,
  mode: 'optional',
): Promise<AmiVersionSource | undefined>;
export async function readAmiVersion(
  ctx: CommandContext,
  mode: 'required' | 'optional' = 'required',
): Promise<AmiVersionSource | undefined> {
  const file = ctx.options.require('ami-version-file');
  const given = ctx.options.string('ami-version');
  if (given) return { version: parseAmiVersion(given, 'ami-version'), file, from: 'input' };
  let text: string;
  try {
    text = await fs.readFile(path.resolve(ctx.deps.cwd, file), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (mode === 'optional') return undefined;
      throw new UserError(
        `AMI version file ${file} not found (in ${ctx.deps.cwd}); set ${ctx.options.mention('ami-version')}, or ${ctx.options.mention('ami-version-file')} (see examples/.packer/ami-version.txt)`,
      );
    }
    throw new UserError(`cannot read AMI version file ${file}: ${messageOf(err)}`);
  }
  return { version: parseAmiVersionFile(text, file), file, from: 'file' };
}
