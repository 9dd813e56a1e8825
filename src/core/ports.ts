import type { ArchiveLimits, PlannedEntry } from './archive';
import type { CiRunRef } from './instance-tags';
import type { LaunchTargetSpec, ResolvedLaunchTargets } from './launch-targets';

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

/**
 * A checksum the store keeps for an object and reports without reading its bytes (S3: HeadObject with
 * ChecksumMode ENABLED). COMPOSITE is S3's checksum of the parts' checksums (`<value>-<parts>`), which
 * depends on the part size it was uploaded with; FULL_OBJECT covers the bytes whatever the parts were.
 */
export interface StoredChecksum {
  algorithm: string;
  /** Undefined where the store did not say (some S3-compatible servers leave ChecksumType out). */
  type?: 'FULL_OBJECT' | 'COMPOSITE';
  value: string;
  /** Part size of a COMPOSITE checksum: the same bytes in other parts give another value. */
  partSize?: number;
}

/**
 * What a store reports about an object without reading its bytes. Any later write of the key changes at
 * least one of these (S3: checksum, ETag, VersionId; a folder: the file's version, see FsObjectStore.stat).
 */
export interface StoredObject {
  size: number;
  etag?: string;
  versionId?: string;
  checksum?: StoredChecksum;
}

export interface UploadOptions {
  /** Also hash the bytes uploaded (hex sha256 in the result). */
  sha256?: boolean;
  /** Called as bytes reach the store (at least once, at the end). */
  onProgress?: TransferProgress;
}

export interface DownloadOptions {
  /** Also hash the bytes written (hex sha256 in the result), as they arrive (off the event loop where it can). */
  sha256?: boolean;
  /** Called as bytes arrive (at least once, at the end). */
  onProgress?: TransferProgress;
  /**
   * Called when bytes [start, end) of the file are written (ranges may come out of order), so a reader can
   * start on them before the download ends. A store may report the whole file once, at the end.
   */
  onWritten?: (start: number, end: number) => void;
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
  /**
   * Stream a file of any size into the store (multipart where the backend has it). Resolves with what the
   * store reported for the new object in the upload's own responses, for the manifest; with `sha256`, also
   * the sha256 of the bytes it sent, from the same read of the file (off the event loop where it can).
   */
  uploadFile(key: string, path: string, options?: UploadOptions): Promise<StoredObject & { sha256?: string }>;
  /** What the store reports about an object now, without reading its bytes; undefined when absent. */
  stat(key: string): Promise<StoredObject | undefined>;
  /** Stream an object into a file; throws when absent. With `sha256`, the hash of the bytes written. */
  downloadFile(
    key: string,
    path: string,
    options?: DownloadOptions,
  ): Promise<{ size: number; sha256?: string }>;
  /** Delete keys, batched by the adapter; missing keys are not an error. */
  deleteMany(keys: string[]): Promise<{ deleted: number; requests: number }>;
}

/** Bytes moved so far of `total`, called as a transfer goes (at least once, at the end). */
export type TransferProgress = (done: number, total: number) => void;

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  /** Hide a value from every later log line (a no-op where the runner has no masking). */
  mask(secret: string): void;
  group<T>(title: string, fn: () => Promise<T>): Promise<T>;
}

export interface ExtractOptions {
  limits?: Partial<ArchiveLimits>;
  signal?: AbortSignal;
  /**
   * The zip file is still being written (a download in progress): it will be `size` bytes, and `ready`
   * resolves once bytes [start, end) are in it (rejects when they never come). Entries are unpacked as
   * their bytes arrive.
   */
  arriving?: { size: number; ready(start: number, end: number): Promise<void> };
  /** Files unpacked at once (default 4): inflating one entry at a time leaves the other cores idle. */
  concurrency?: number;
}

/** Reads and unpacks zip archives; every rule of what is refused lives in core/archive.ts. */
export interface Archives {
  /**
   * Checks every entry of the central directory without writing anything; throws UnsafeArchiveError naming
   * each refused entry (links, special files, unsafe or duplicate names, sizes past the limits).
   */
  inspect(zipFile: string, limits?: Partial<ArchiveLimits>): Promise<PlannedEntry[]>;
  /**
   * The same checks, then every entry written into destDir (which exists, is empty and was created by the
   * caller): folders and files are created new (never through an existing name or a link), with mode 0644,
   * or 0755 for folders and executables.
   */
  extract(zipFile: string, destDir: string, options?: ExtractOptions): Promise<PlannedEntry[]>;
}

export interface Clock {
  now(): Date;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface Git {
  /** Full sha of a revision; a UserError when it does not exist. */
  revParse(rev: string): Promise<string>;
  hasCommit(rev: string): Promise<boolean>;
  /** Git object hash (tree or blob) of a path at a revision, or undefined when the path does not exist there. */
  objectHash(rev: string, path: string): Promise<string | undefined>;
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
  /** True in a shallow clone, where a commit without parents may not be the first commit. */
  isShallow?(): Promise<boolean>;
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
  /**
   * Idempotency token of this launch (EC2 ClientToken, one per attempt derived from it), saved by the caller
   * before the request: when the answer is lost, the instance is found by it. Generated when absent.
   */
  clientToken?: string;
}

export interface InstanceInfo {
  id: string;
  state: string;
  instanceType?: string;
  /** Image it booted from (AMI id), for the manifest. */
  imageId?: string;
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

/**
 * A cloud compute whose machines are reached over SSH (EC2): key pairs for one run, host keys reported
 * out of band, and launch targets named by version, name or CIDR.
 */
export interface CloudCompute extends Compute {
  /** A key pair for one run (EC2 CreateKeyPair). */
  createKeyPair(name: string, tags: Record<string, string>): Promise<{ keyName: string; privateKey: string }>;
  /** Idempotent: deleting a missing key pair is not an error. */
  deleteKeyPair(keyName: string): Promise<void>;
  /**
   * Host keys the instance reported out of band (EC2: its console output), so SSH can verify the host
   * without trusting the first key it sees. Waits until they appear or the timeout passes.
   */
  hostKeys(id: string, timeoutSeconds: number, signal?: AbortSignal): Promise<HostKeys>;
  /** AMI (id, version tag or name), subnets (id or CIDR), security groups (id or name) to ids, in parallel. */
  resolveLaunchTargets(spec: LaunchTargetSpec): Promise<ResolvedLaunchTargets>;
}

/** The stages of acquiring and releasing a host, for the command's numbered step lines. */
export type HostStep = 'launch' | 'wait-running' | 'wait-ssh' | 'terminate';

/** What a training run asks of its host; a plain object, so new launch settings pass straight through. */
export interface HostSpec {
  /** The launch as the options give it; the session adds the key pair, the launch token and resolved targets. */
  launch: LaunchRequest;
  /** How the image, subnets and security groups are named; read only by backends that resolve them (EC2). */
  targets(): Promise<LaunchTargetSpec>;
  /** Names the run's ephemeral key pair. */
  modelName: string;
  modelPrefix: string;
  /** A key pair of the user's (with its private key); both unset means an ephemeral key pair. */
  keyName?: string;
  privateKey?: string;
  /** Host keys pinned by the user; otherwise the instance's own report is waited for. */
  pinnedHostKeys?: HostKeys;
  bootTimeoutSeconds: number;
  /** Told as each stage starts. */
  onStep?(step: HostStep): void;
}

/** A launched, reachable host; release terminates it and removes what was made for it. */
export interface HostSession {
  readonly instance: InstanceInfo;
  readonly shell: RemoteShell;
  /** Idempotent; throws (after trying everything) when something could not be removed. */
  release(): Promise<void>;
}

/**
 * Where a training run gets its host (EC2 over SSH, or a local folder). Owns key pairs, host keys, the
 * saved state the action's post step reads, and termination.
 */
export interface HostSessions {
  /** Recorded in the manifest (`aws`, `local`) and used in the step titles. */
  readonly backend: 'aws' | 'local';
  /** A host ready for commands; a failed acquire removes whatever it had made before it throws. */
  acquire(spec: HostSpec, signal: AbortSignal): Promise<HostSession>;
  /** The post step: terminates the instance and deletes the key pair a crashed or cancelled run saved. */
  releaseFromState(): Promise<void>;
}

/** What the CI says about a run: finished (any conclusion) or not. */
export interface CiRunStatus {
  finished: boolean;
  /** e.g. `completed (cancelled)`, `running`. */
  detail: string;
}

/** The CI's API (GitHub Actions, CircleCI), asked by sweep whether the run that launched an instance ended. */
export interface CiRuns {
  /** Undefined when the CI cannot be asked (no token, unknown provider, API error): the instance is kept. */
  status(run: CiRunRef, attempt?: string): Promise<CiRunStatus | undefined>;
}

/** Public key lines (`ssh-ed25519 AAAA…`) and/or `SHA256:` fingerprints a host must present. */
export interface HostKeys {
  keys: string[];
  fingerprints: string[];
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
  /** Copies a local folder to the remote (rsync), honouring exclude patterns; the signal stops the copy. */
  pushDir(localDir: string, remoteDir: string, excludes: string[], signal?: AbortSignal): Promise<void>;
  pushFile(localFile: string, remotePath: string, signal?: AbortSignal): Promise<void>;
  pullFile(remotePath: string, localFile: string, signal?: AbortSignal): Promise<void>;
  /** Removes what the shell keeps locally (key file, known_hosts); safe to call twice. */
  close?(): Promise<void>;
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

/** A machine image (EC2 AMI) as the image commands see it. */
export interface MachineImage {
  id: string;
  name?: string;
  state?: string;
  createdAt?: Date;
  ownerId?: string;
  tags: Record<string, string>;
  snapshotIds: string[];
}

/** The account's machine images in one region (EC2 AMIs). */
export interface ImageRegistry {
  /** Images this account owns that carry every given tag, in any state but deregistered. */
  findByTags(tags: Record<string, string>): Promise<MachineImage[]>;
  /** Newest available image whose name matches the pattern (EC2 wildcards `*`, `?`) among the owners. */
  latestByName(namePattern: string, owners: string[]): Promise<MachineImage | undefined>;
  describe(id: string): Promise<MachineImage | undefined>;
  /** Tags the image and its snapshots. */
  tag(id: string, tags: Record<string, string>): Promise<void>;
  /** Lets the accounts launch the image. */
  share(id: string, accountIds: string[]): Promise<void>;
  /** Copies the image to another region, tagged alike; resolves with the new image id. */
  copyTo(
    id: string,
    region: string,
    request: { name: string; tags: Record<string, string> },
  ): Promise<string>;
  /** Deregisters the image, then deletes its snapshots. */
  deregister(image: MachineImage): Promise<{ deletedSnapshots: string[] }>;
}
