import * as path from 'node:path';
import { FsObjectStore } from './adapters/local/fs-store';
import { S3ObjectStore } from './adapters/aws/s3-store';
import { GitCli } from './adapters/git/git-cli';
import { systemClock } from './adapters/system/clock';
import { readCiContext } from './core/ci-env';
import { UserError } from './core/errors';
import type { Options } from './core/options';
import type { Logger, ObjectStore, StateStore } from './core/ports';
import type { Deps } from './commands/types';

export type Backend = 'aws' | 'local';

/** `auto` means aws when a bucket is configured, else the local folder store. */
export function backendOf(options: Options): Backend {
  const chosen = options.string('backend') ?? 'auto';
  if (chosen === 'aws' || chosen === 'local') return chosen;
  return options.string('bucket') ? 'aws' : 'local';
}

export function createStore(options: Options, cwd: string): ObjectStore {
  if (backendOf(options) === 'local') {
    return new FsObjectStore(path.resolve(cwd, options.string('local-store') ?? '.model-store'));
  }
  const bucket = options.string('bucket');
  if (!bucket)
    throw new UserError(
      'the aws backend needs a bucket: set the bucket input, --bucket or MODEL_PIPELINE_BUCKET',
    );
  return new S3ObjectStore({
    bucket,
    region: options.string('region') ?? 'us-east-1',
    endpoint: options.string('s3-endpoint'),
  });
}

export interface DepsIo {
  logger: Logger;
  state: StateStore;
  env: Record<string, string | undefined>;
  cwd: string;
}

export function createDeps(options: Options, io: DepsIo): Deps {
  const cwd = path.resolve(io.cwd, options.string('working-directory') ?? '.');
  let store: ObjectStore | undefined;
  return {
    store: () => (store ??= createStore(options, cwd)),
    git: new GitCli(cwd),
    clock: systemClock,
    logger: io.logger,
    state: io.state,
    ci: readCiContext(io.env),
    cwd,
    env: io.env,
  };
}
