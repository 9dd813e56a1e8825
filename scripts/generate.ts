// Writes the files generated from the option tables (action.yml). Run with `npm run gen`.
import { writeFileSync } from 'node:fs';
import { allOptions, allOutputs, commandNames } from '../src/commands';
import { renderActionYml } from '../src/meta/action-yml';

writeFileSync('action.yml', renderActionYml(allOptions(), allOutputs(), commandNames()));
