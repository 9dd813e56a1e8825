import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { COMMANDS, allOptions, allOutputs, commandNames, optionsOf } from '../commands';
import { EVERYWHERE_OPTIONS } from '../commands/common-options';
import type { CommandDef } from '../commands/types';
import { VERSION } from '../version';
import { renderActionYml } from './action-yml';
import { renderOrbSources } from './orb';
import { renderReadme } from './readme';

/** Where the orb source lives; the packed orb is written next to it by scripts/pack-orb.mjs. */
export const ORB_SRC = 'orb/src';
export const ORB_PACKED = 'orb/orb.yml';

/**
 * Every file `npm run gen` writes, by path relative to the repository root. The README is rewritten only
 * between its markers, so it is read from `root` first. Built from the live dispatch table: a command
 * registered in src/commands/index.ts shows up everywhere on the next run.
 */

export function generatedFiles(root: string): Map<string, string> {
  const commands = Object.values(COMMANDS);
  const files = new Map<string, string>();
  files.set('action.yml', renderActionYml(allOptions(), allOutputs(), commandNames()));
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  files.set(
    'README.md',
    renderReadme(
      readme,
      // a shared option that only some commands read lists them, as help does
      commands.map((c) => ({ ...c, options: optionsOf(c) })),
      allOptions(),
      allOutputs(),
      new Set(EVERYWHERE_OPTIONS.map((o) => o.name)),
    ),
  );
  const orb = renderOrbSources(commands, (c) => optionsOf(c as CommandDef), VERSION);
  for (const [rel, text] of orb) files.set(`${ORB_SRC}/${rel}`, text);
  return files;
}
