/**
 * The ports through which core reaches the world. Adapters in src/adapters implement them;
 * commands receive them as arguments so tests pass real local adapters or real servers, never module mocks.
 */

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
  etag?: string;
}

export interface PutOptions {
  /** Create only: fail with PreconditionFailedError when the key exists. */
  ifNoneMatch?: boolean;
  /** Replace only the version with this etag: fail with PreconditionFailedError otherwise. */
  ifMatch?: string;
  contentType?: string;
}

export interface ObjectStore {
  /** Human and tool readable location of a key: s3://bucket/key or file:///path. */
  uri(key: string): string;
  /** Every object under prefix, in key order, across all pages. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** The "folders" directly under prefix (keys cut at the next '/'), each ending in '/'. */
  listPrefixes(prefix: string): Promise<string[]>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Whole body of a small object; undefined when absent. */
  get(key: string): Promise<{ body: Buffer; etag?: string } | undefined>;
  put(key: string, body: Buffer | string, options?: PutOptions): Promise<{ etag?: string }>;
  /** Stream a file of any size into the store (multipart where the backend has it). */
  uploadFile(key: string, path: string): Promise<{ etag?: string; size: number }>;
  /** Stream an object into a file; throws when absent. */
  downloadFile(key: string, path: string): Promise<{ size: number }>;
  /** Delete keys, batched by the adapter; missing keys are not an error. */
  deleteMany(keys: string[]): Promise<{ deleted: number; requests: number }>;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  /** Hide a value from every later log line (a no-op where the runner has no masking). */
  mask(secret: string): void;
  group<T>(title: string, fn: () => Promise<T>): Promise<T>;
}

export interface Clock {
  now(): Date;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface Git {
  /** Full sha of a revision; a UserError when it does not exist. */
  revParse(rev: string): Promise<string>;
  hasCommit(rev: string): Promise<boolean>;
  /** File content at a revision, or undefined when the path does not exist there. */
  showFile(rev: string, path: string): Promise<string | undefined>;
  mergeBase(a: string, b: string): Promise<string>;
  /** Paths changed between base and head (git diff --name-only base head). */
  changedFiles(base: string, head: string): Promise<string[]>;
  currentBranch(): Promise<string | undefined>;
  /** Names of branches that exist (local and remote-tracking, without the remote name). */
  liveBranches(): Promise<string[]>;
  /** True when commit is reachable from any of the given refs. */
  isAncestor(commit: string, ref: string): Promise<boolean>;
  /** The remote's default branch ref (e.g. origin/main), when one can be found. */
  defaultBranch(): Promise<string | undefined>;
}

/** Where a step can park facts for the post step (GitHub saveState) or a later run. */
export interface StateStore {
  save(name: string, value: string): void;
  get(name: string): string;
}

/** What a training run asks of the compute backend. */
export interface LaunchRequest {
  /** Image to boot (AMI id on EC2; ignored by the local backend). */
  imageId: string;
  /** Tried in order; the next is used only on capacity errors. */
  instanceTypes: string[];
  /** Tried in order with each type, on capacity errors. */
  subnetIds: string[];
  securityGroupIds: string[];
  keyName?: string;
  spot: boolean;
  rootVolumeGiB: number;
  /** The instance powers itself off (and so terminates) after this many seconds, whatever happens to CI. */
  maxRuntimeSeconds: number;
  tags: Record<string, string>;
  instanceProfile?: string;
  userData?: string;
}

export interface InstanceInfo {
  id: string;
  state: string;
  instanceType?: string;
  /** Address the runner reaches SSH on. */
  host?: string;
  launchedAt?: Date;
  tags: Record<string, string>;
}

/** Starts and stops the machine a model trains on (EC2, or a local process for the local backend). */
export interface Compute {
  launch(req: LaunchRequest, signal?: AbortSignal): Promise<InstanceInfo>;
  describe(id: string): Promise<InstanceInfo | undefined>;
  waitUntilRunning(id: string, timeoutSeconds: number, signal?: AbortSignal): Promise<InstanceInfo>;
  /** Idempotent: terminating a terminated or unknown instance is not an error. */
  terminate(id: string): Promise<void>;
  /** Instances carrying every given tag, in any state but terminated. */
  findByTags(tags: Record<string, string>): Promise<InstanceInfo[]>;
}

export interface ExecResult {
  exitCode: number;
}

/** Shell access to the training machine. */
export interface RemoteShell {
  /** Resolves when a command can run, or rejects after the timeout. */
  waitReady(timeoutSeconds: number, signal?: AbortSignal): Promise<void>;
  /** Runs a command, streaming its output lines to onOutput; rejects on timeout or abort. */
  exec(
    command: string,
    options: { timeoutSeconds?: number; signal?: AbortSignal; onOutput?: (line: string) => void },
  ): Promise<ExecResult>;
  /** Copies a local folder to the remote (rsync), honouring exclude patterns. */
  pushDir(localDir: string, remoteDir: string, excludes: string[]): Promise<void>;
  pushFile(localFile: string, remotePath: string): Promise<void>;
  pullFile(remotePath: string, localFile: string): Promise<void>;
}

/** Builds machine images (Packer). */
export interface ImageBuilder {
  build(request: {
    templateDir: string;
    variables: Record<string, string>;
    onOutput?: (line: string) => void;
    signal?: AbortSignal;
  }): Promise<{ imageId: string; region?: string }>;
  validate(templateDir: string, variables: Record<string, string>): Promise<void>;
}
