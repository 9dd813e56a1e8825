import * as path from 'node:path';
import { FsObjectStore } from './adapters/local/fs-store';
import { GitCli } from './adapters/git/git-cli';
import { systemClock } from './adapters/system/clock';
import { ZipArchives } from './adapters/system/zip';
import { LocalCompute } from './adapters/local/local-compute';
import { LocalHostSessions } from './adapters/local/local-host-session';
import { imageDeps } from './wiring-images';
import { createProgress } from './adapters/system/progress';
import { withTransferProgress } from './adapters/system/transfer-progress';
import type { Progress } from './core/progress';
import { readCiContext } from './core/ci-env';
import { FetchCiRuns } from './adapters/ci/ci-runs';
import { HttpPublicAddress } from './adapters/system/public-address';
import { UserError } from './core/errors';
import type { PipelineOptions } from './commands/option-table';
import type { CloudCompute, Compute, HostSessions, Logger, ObjectStore, StateStore } from './core/ports';
import type { Deps } from './commands/types';

export type Backend = 'aws' | 'local';

/*
 * The AWS SDK clients and the SSH adapter load on first use, not at start-up: a needs-model check on the
 * local backend never evaluates them, and one on S3 never evaluates EC2 (about 0.7 s of a cold start).
 * The bundler still includes them; only their evaluation waits.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const s3StoreModule = (): typeof import('./adapters/aws/s3-store') => require('./adapters/aws/s3-store');
const ec2ComputeModule = (): typeof import('./adapters/aws/ec2-compute') =>
  require('./adapters/aws/ec2-compute');
const sshHostModule = (): typeof import('./adapters/ssh/ssh-host-session') =>
  require('./adapters/ssh/ssh-host-session');
/* eslint-enable @typescript-eslint/no-require-imports */

/** `auto` means aws when a bucket is configured, else the local folder store. */
export function backendOf(options: PipelineOptions): Backend {
  const chosen = options.string('backend');
  if (chosen === 'aws' || chosen === 'local') return chosen;
  if (chosen === 'sagemaker') return 'aws'; // S3 store; train runs on SageMaker (train-sagemaker-wiring)
  return options.string('bucket') ? 'aws' : 'local';
}

export function createStore(options: PipelineOptions, cwd: string, signal?: AbortSignal): ObjectStore {
  if (backendOf(options) === 'local') {
    return new FsObjectStore(path.resolve(cwd, options.string('local-store')));
  }
  const bucket = options.string('bucket');
  if (!bucket)
    throw new UserError(
      `the aws backend needs a bucket: set ${options.mention('bucket')} or MODEL_PIPELINE_BUCKET, or use ${options.mention('backend', 'local')}`,
    );
  const { S3ObjectStore } = s3StoreModule();
  return new S3ObjectStore({
    bucket,
    region: options.string('region'),
    endpoint: options.string('s3-endpoint'),
    upload: { checksums: options.bool('s3-checksums') },
    signal,
  });
}

function createEc2Compute(options: PipelineOptions, logger: Logger, signal?: AbortSignal): CloudCompute {
  const { Ec2Compute } = ec2ComputeModule();
  return new Ec2Compute({
    region: options.string('region'),
    endpoint: options.string('ec2-endpoint'),
    log: (m) => logger.info(m),
    signal,
  });
}

export function createCompute(
  options: PipelineOptions,
  logger: Logger,
  signal?: AbortSignal,
  kind?: 'aws',
): Compute {
  if (kind !== 'aws' && backendOf(options) === 'local') return new LocalCompute();
  return createEc2Compute(options, logger, signal);
}

/** Hosts reached over SSH (ssh-host overrides the instance address, e.g. a forwarded port). */
export function sshHostSessions(
  options: PipelineOptions,
  compute: () => CloudCompute,
  io: { logger: Logger; state: StateStore },
): HostSessions {
  const { SshHostSessions } = sshHostModule();
  return new SshHostSessions({
    compute,
    state: io.state,
    logger: io.logger,
    sshHost: options.string('ssh-host') || undefined,
    sshPort: options.int('ssh-port'),
    sshUser: options.string('ssh-user'),
    sshHostOption: options.mention('ssh-host'),
  });
}

/** Where train gets its host: EC2 over SSH, or a local work folder for the local backend. */
export function createHostSessions(
  options: PipelineOptions,
  io: { logger: Logger; state: StateStore; signal?: AbortSignal },
): HostSessions {
  if (backendOf(options) === 'local') {
    let compute: LocalCompute | undefined;
    return new LocalHostSessions({ compute: () => (compute ??= new LocalCompute()), ...io });
  }
  let compute: CloudCompute | undefined;
  return sshHostSessions(options, () => (compute ??= createEc2Compute(options, io.logger, io.signal)), io);
}

export interface DepsIo {
  logger: Logger;
  /** Progress of long transfers; default: throttled lines through the logger (no bar). */
  progress?: Progress;
  state: StateStore;
  env: Record<string, string | undefined>;
  cwd: string;
  /** The command's abort signal, handed to the AWS clients so SIGINT/SIGTERM ends their calls. */
  signal?: AbortSignal;
}

export function createDeps(options: PipelineOptions, io: DepsIo): Deps {
  const cwd = path.resolve(io.cwd, options.string('working-directory'));
  let store: ObjectStore | undefined;
  let compute: Compute | undefined;
  let ec2: Compute | undefined;
  let hosts: HostSessions | undefined;
  const getCompute = (kind?: 'aws'): Compute =>
    kind === 'aws' && backendOf(options) === 'local'
      ? (ec2 ??= createCompute(options, io.logger, io.signal, 'aws'))
      : (compute ??= createCompute(options, io.logger, io.signal));
  const progress = io.progress ?? createProgress({ line: (t) => io.logger.info(t) });
  return {
    store: () => (store ??= withTransferProgress(createStore(options, cwd, io.signal), progress)),
    compute: getCompute,
    hosts: () => (hosts ??= createHostSessions(options, io)),
    ...imageDeps(options, { ...io, cwd }),
    archives: new ZipArchives(),
    git: new GitCli(cwd),
    clock: systemClock,
    logger: io.logger,
    state: io.state,
    ci: readCiContext(io.env),
    ciRuns: () =>
      new FetchCiRuns({
        githubToken: options.string('github-token') || undefined,
        githubApiUrl: options.string('github-api-url'),
        circleToken: options.string('circleci-token') || undefined,
        circleApiUrl: options.string('circleci-api-url'),
        log: (m) => io.logger.warn(m),
      }),
    // MODEL_PIPELINE_CHECKIP_URL: another checkip service (a proxy's, or a local one in tests); README
    publicAddress: () => new HttpPublicAddress({ url: io.env.MODEL_PIPELINE_CHECKIP_URL || undefined }),
    cwd,
    env: io.env,
  };
}
