import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { trainCommand } from '../../src/commands/train';
import { pruneAmisCommand } from '../../src/commands/prune-amis';
import { readAmiVersion } from '../../src/commands/ami-version';
import { UserError } from '../../src/core/errors';
import type { LaunchTargetSpec, ResolvedLaunchTargets } from '../../src/core/launch-targets';
import { sshHostSessions } from '../../src/wiring';
import { FakeCompute } from '../helpers/train-fixture';
import { buildContext } from '../../src/runner';
import { configToml, TempRepo } from '../helpers/git-repo';
import { MemoryLogger } from '../helpers/memory-logger';

const EXAMPLE = path.resolve(__dirname, '../../examples/.packer/ami-version.txt');

function repoWithExampleVersionFile(): TempRepo {
  const repo = new TempRepo();
  repo.write('search-config.toml', configToml('1.0.0'));
  mkdirSync(path.join(repo.dir, '.packer'));
  copyFileSync(EXAMPLE, path.join(repo.dir, '.packer', 'ami-version.txt'));
  repo.commit('model');
  return repo;
}

const context = (command: typeof trainCommand, cwd: string, inputs: Record<string, string> = {}) =>
  buildContext(command, {
    command: command.name,
    inputs: { backend: 'local', 'local-store': mkdtempSync(path.join(tmpdir(), 'mp-ami-store-')), ...inputs },
    env: {},
    cwd,
    logger: new MemoryLogger(),
    state: new MemoryState(),
    signal: new AbortController().signal,
  });

describe('one reader of the AMI version file (defect 7)', () => {
  it('train looks for the AMI of the version line, skipping the comment lines build-ami skips', async () => {
    const repo = repoWithExampleVersionFile();
    const ctx = await context(trainCommand, repo.dir, { 'data-key': 'none', 'ssh-private-key': 'unused' });
    let asked: LaunchTargetSpec | undefined;
    class AskedCompute extends FakeCompute {
      override async resolveLaunchTargets(spec: LaunchTargetSpec): Promise<ResolvedLaunchTargets> {
        asked = spec;
        throw new UserError('stop here: the AMI lookup is what this test looks at');
      }
    }
    const compute = new AskedCompute();
    ctx.deps.hosts = () =>
      sshHostSessions(ctx.options, () => compute, { logger: ctx.deps.logger, state: ctx.deps.state });
    await expect(trainCommand.run(ctx)).rejects.toThrow(/stop here/);
    expect(asked?.amiVersion).toBe('1.0.0');
  });

  it('build-ami, prune-amis and train read the same version from the same file', async () => {
    const repo = repoWithExampleVersionFile();
    for (const cmd of [trainCommand, pruneAmisCommand]) {
      const ctx = await context(cmd, repo.dir);
      expect((await readAmiVersion(ctx))?.version).toBe('1.0.0');
    }
    // train finds its AMI otherwise when there is no version file; build-ami needs one
    const bare = new TempRepo();
    bare.write('search-config.toml', configToml('1.0.0')).commit('x');
    const ctx = await context(trainCommand, bare.dir);
    expect(await readAmiVersion(ctx, 'optional')).toBeUndefined();
    await expect(readAmiVersion(ctx)).rejects.toThrow(
      /AMI version file \.packer\/ami-version\.txt not found/,
    );
  });
});
