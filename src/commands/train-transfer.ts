import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PipelineError, UserError } from '../core/errors';
import { storedRecord, type ManifestFile } from '../core/manifest';
import type { Logger, ObjectStore, RemoteShell } from '../core/ports';
import { formatBytes } from '../core/progress';
import {
  existingFilesCommand,
  instanceFetchCommand,
  instanceUploadCommand,
  MISSING_EXIT,
  parseExistingFiles,
  parseFileReports,
  type ArtifactSpec,
  type TransferMode,
} from '../core/train';
import { uploadManifestFile } from './manifest-upload';

/** One file of the model folder: its key, and its manifest entry once stored. */
export interface Uploaded {
  key: string;
  entry: ManifestFile;
}

/** A data object the training read, as the manifest records it. */
export interface InputRecord {
  key: string;
  sha256?: string;
  size?: number;
}

/** What a transfer works with on one host. */
export interface TransferScope {
  store: ObjectStore;
  shell: RemoteShell;
  instanceId: string;
  /** The copied repository on the host; artifact paths are relative to it. */
  remoteDir: string;
  /** A private folder on the runner. */
  work: string;
  signal: AbortSignal;
  log: Logger;
}

/** The artifacts to store: all of them, and which one is the metrics file the runner must read. */
export interface ArtifactPlan {
  artifacts: ArtifactSpec[];
  metricsPath?: string;
  prefix: string;
}

/**
 * How files move between the store and the training host: through the runner, or between the instance and
 * S3 directly (the runner still reads the metrics file, so that one always comes through it).
 */
export interface ArtifactTransfer {
  /** Places the store's data object at `dest` on the host and says what it was. */
  pushInput(scope: TransferScope, key: string, dest: string): Promise<InputRecord>;
  /**
   * Stores the training outputs under the model prefix. Each file joins `uploads` before its upload starts,
   * so a failure part-way still removes it. Resolves with the runner's copy of the metrics file, if any.
   */
  collect(scope: TransferScope, plan: ArtifactPlan, uploads: Uploaded[]): Promise<{ metricsLocal?: string }>;
}

/** The transfer the option names; checked before anything launches. */
export function artifactTransfer(
  mode: TransferMode,
  store: ObjectStore,
  instance: { aws: string; s3Endpoint?: string; timeoutSeconds: number },
): ArtifactTransfer {
  if (mode !== 'instance') return viaRunner;
  const uri = store.uri('');
  if (!uri.startsWith('s3://'))
    throw new UserError(
      `transfer instance needs an S3 store (the instance uploads with the aws CLI); this store is ${uri}`,
    );
  return fromInstance(instance);
}

const remotePathOf = (scope: TransferScope, a: ArtifactSpec): string =>
  path.posix.join(scope.remoteDir, a.remotePath);

/** An output the training did not write: a failure when the model needs it, else a line in the log. */
function skipMissing(scope: TransferScope, a: ArtifactSpec): void {
  if (a.required)
    throw new PipelineError(
      `the training command succeeded but left no ${a.remotePath} (in ${scope.remoteDir} on ${scope.instanceId}); it must write ${a.name}`,
    );
  scope.log.info(`no ${a.remotePath}: skipped`);
}

/** Everything through the runner: downloaded and pushed, pulled and uploaded (hashed in the same read). */
export const viaRunner: ArtifactTransfer = {
  async pushInput(scope, key, dest) {
    const local = path.join(scope.work, 'input', path.posix.basename(key));
    // hashed as it is written (one read of the bytes, off the event loop), not read again afterwards
    const got = await scope.store.downloadFile(key, local, { sha256: true });
    const h = got.sha256 ? { sha256: got.sha256, size: got.size } : await hashFile(local);
    await scope.shell.pushFile(local, dest, scope.signal);
    scope.log.info(`${key} (${formatBytes(h.size)}) copied to the instance`);
    return { key, sha256: h.sha256, size: h.size };
  },

  async collect(scope, plan, uploads) {
    const existing = await existingRemoteFiles(scope, plan.artifacts);
    let metricsLocal: string | undefined;
    for (const a of plan.artifacts) {
      const local = await storeThroughRunner(scope, plan, a, existing, uploads);
      if (local && a.remotePath === plan.metricsPath) metricsLocal = local;
    }
    return { metricsLocal };
  },
};

/** Pulls one output to the runner and uploads it; resolves with the runner's copy (undefined: skipped). */
async function storeThroughRunner(
  scope: TransferScope,
  plan: ArtifactPlan,
  a: ArtifactSpec,
  existing: Map<string, number>,
  uploads: Uploaded[],
): Promise<string | undefined> {
  const remote = remotePathOf(scope, a);
  const expectedSize = existing.get(remote);
  if (expectedSize === undefined) {
    skipMissing(scope, a);
    return undefined;
  }
  const local = path.join(scope.work, 'out', a.name);
  await scope.shell.pullFile(remote, local, scope.signal);
  const pulledSize = (await fs.stat(local)).size;
  if (pulledSize !== expectedSize)
    throw new PipelineError(
      `${a.remotePath} on ${scope.instanceId} was ${expectedSize} bytes but ${pulledSize} came back: does something still write it after the training command ended?`,
    );
  // one read of the file feeds the upload and its sha256 (hashed on a worker thread)
  const up = await uploadManifestFile(scope.store, plan.prefix + a.name, local, a.name);
  uploads.push(up);
  scope.log.info(`uploaded ${a.name} (${formatBytes(up.entry.size)}) to ${scope.store.uri(up.key)}`);
  return local;
}

/** Between the instance and S3 with the instance's aws CLI and instance profile; the metrics via the runner. */
export function fromInstance(o: {
  aws: string;
  s3Endpoint?: string;
  timeoutSeconds: number;
}): ArtifactTransfer {
  const { aws, s3Endpoint: endpoint } = o;
  const onInstance = (scope: TransferScope, command: string) =>
    runOnInstance(scope, command, o.timeoutSeconds);
  return {
    async pushInput(scope, key, dest) {
      const name = path.posix.basename(dest);
      const uri = scope.store.uri(key);
      const r = await onInstance(scope, instanceFetchCommand({ aws, uri, dest, endpoint }));
      const h = parseFileReports(r.lines).get(name);
      if (r.exitCode !== 0 || !h)
        throw new PipelineError(
          `the instance could not download ${uri} (exit ${r.exitCode}): it needs the aws CLI and an instance profile allowed s3:GetObject`,
        );
      scope.log.info(`${key} (${formatBytes(h.size)}) downloaded by the instance`);
      return { key, sha256: h.sha256, size: h.size };
    },

    async collect(scope, plan, uploads) {
      const isMetrics = (a: ArtifactSpec): boolean => a.remotePath === plan.metricsPath;
      const existing = await existingRemoteFiles(scope, plan.artifacts.filter(isMetrics));
      let metricsLocal: string | undefined;
      for (const a of plan.artifacts) {
        if (isMetrics(a)) {
          metricsLocal = await storeThroughRunner(scope, plan, a, existing, uploads);
          continue;
        }
        const key = plan.prefix + a.name;
        const uri = scope.store.uri(key);
        // recorded before the upload starts, so a failure part-way still removes it
        const up: Uploaded = { key, entry: { name: a.name, size: 0, sha256: '' } };
        uploads.push(up);
        const file = remotePathOf(scope, a);
        const r = await onInstance(scope, instanceUploadCommand({ aws, file, name: a.name, uri, endpoint }));
        if (r.exitCode === MISSING_EXIT) {
          uploads.splice(uploads.indexOf(up), 1);
          skipMissing(scope, a);
          continue;
        }
        const h = parseFileReports(r.lines).get(a.name);
        if (r.exitCode !== 0 || !h)
          throw new PipelineError(
            `the instance could not upload ${a.name} to ${uri} (exit ${r.exitCode}): it needs the aws CLI and an instance profile allowed s3:PutObject`,
          );
        const stored = await scope.store.stat(key);
        if (stored?.size !== h.size)
          throw new PipelineError(
            `${uri} is ${stored?.size ?? 'missing'} bytes after the upload, the instance sent ${h.size}`,
          );
        // what the store reports right after the instance's upload (its responses stay on the instance)
        up.entry = { name: a.name, size: h.size, sha256: h.sha256, stored: storedRecord(stored) };
        scope.log.info(`the instance uploaded ${a.name} (${formatBytes(h.size)}) to ${uri}`);
      }
      return { metricsLocal };
    },
  };
}

async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Which of the artifacts exist on the host, with their sizes, in one command. */
async function existingRemoteFiles(
  scope: TransferScope,
  artifacts: ArtifactSpec[],
): Promise<Map<string, number>> {
  if (artifacts.length === 0) return new Map();
  const lines: string[] = [];
  const r = await scope.shell.exec(existingFilesCommand(artifacts.map((a) => remotePathOf(scope, a))), {
    timeoutSeconds: 120,
    signal: scope.signal,
    onOutput: (line) => lines.push(line),
  });
  if (r.exitCode !== 0)
    throw new PipelineError(
      `could not list the training outputs on the instance (exit ${r.exitCode}): ${lines.slice(-5).join(' ')}`,
    );
  return parseExistingFiles(lines);
}

/** A transfer command on the instance: report lines kept, anything else (aws CLI errors) logged. */
async function runOnInstance(
  scope: TransferScope,
  command: string,
  timeoutSeconds: number,
): Promise<{ exitCode: number; lines: string[] }> {
  const lines: string[] = [];
  const r = await scope.shell.exec(command, {
    timeoutSeconds,
    signal: scope.signal,
    onOutput: (line) => {
      lines.push(line);
      if (!line.startsWith('MP-FILE ')) scope.log.info(line);
    },
  });
  return { exitCode: r.exitCode, lines };
}
