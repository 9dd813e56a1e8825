import { promises as fs, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { formatDuration } from '../../core/duration';
import { PipelineError, UserError } from '../../core/errors';
import { hasHostKeys, keysMatchingFingerprints, knownHostsText } from '../../core/host-keys';
import type { ExecResult, HostKeys, Logger, RemoteShell } from '../../core/ports';
import { runLines } from '../system/process-lines';
import {
  controlPathFor,
  dirSource,
  HOST_KEY_ALIAS,
  remoteSpec,
  rsyncArgv,
  rsyncRemoteShell,
  sshControlArgv,
  sshExecArgv,
  supervisedCommand,
  type SshEndpoint,
  type SshFiles,
} from './argv';

export interface SshShellConfig extends SshEndpoint {
  /** Private key text; written 0600 to a private temp folder, removed by close(). */
  privateKey: string;
  hostKeys: HostKeys;
  logger: Logger;
  /** Longest wait between readiness probes (the first ones come sooner, see pollDelayMs). */
  pollSeconds?: number;
  connectTimeoutSeconds?: number;
  /** Share one connection between calls (default); off opens one per ssh and rsync call. */
  shareConnection?: boolean;
}

/** The first readiness probes come quickly, so a host that is nearly up is seen soon after it is. */
const FIRST_POLL_MS = 250;

/** Wait after failed probe number `attempt` (1-based): 250 ms, doubling up to maxMs. */
export function pollDelayMs(attempt: number, maxMs: number): number {
  return Math.min(maxMs, FIRST_POLL_MS * 2 ** Math.min(Math.max(0, attempt - 1), 16));
}

const HOST_KEY_FAILURE =
  /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|host key .* differs/i;

/** Not retried: the host presents a key nobody vouched for. */
export class HostKeyMismatchError extends PipelineError {
  constructor(message: string) {
    super(message);
    this.name = 'HostKeyMismatchError';
  }
}

/** RemoteShell over the system ssh and rsync, verifying the host against pinned keys or fingerprints. */
export class SshShell implements RemoteShell {
  private readonly dir: string;
  private readonly files: SshFiles;
  private knownHostsReady = false;
  private closed = false;

  constructor(private readonly c: SshShellConfig) {
    if (!hasHostKeys(c.hostKeys)) {
      throw new UserError(
        `no host key to verify ${c.host} by: set ssh-host-key (a public key line or SHA256: fingerprint), or use a backend that reports the instance's host keys`,
      );
    }
    if (!/^[A-Za-z0-9.:_-]+$/.test(c.host)) throw new UserError(`"${c.host}" is not a host name or address`);
    // mkdtemp creates the folder 0700: the key never sits in a shared place
    this.dir = mkdtempSync(path.join(tmpdir(), 'mp-ssh-'));
    this.files = {
      identityFile: path.join(this.dir, 'id'),
      knownHostsFile: path.join(this.dir, 'known_hosts'),
      // the socket sits in the 0700 folder too: only we can run commands over the authenticated connection
      controlPath: c.shareConnection === false ? undefined : controlPathFor(this.dir),
    };
    const key = c.privateKey.replace(/\r\n/g, '\n');
    writeFileSync(this.files.identityFile, key.endsWith('\n') ? key : key + '\n', {
      mode: 0o600,
    });
    c.logger.mask(c.privateKey);
  }

  get endpoint(): string {
    return `${this.c.user}@${this.c.host}:${this.c.port}`;
  }

  /** Pinned key lines are written at once; fingerprints need the host up, to scan its keys and compare. */
  private async ensureKnownHosts(signal?: AbortSignal): Promise<boolean> {
    if (this.knownHostsReady) return true;
    const { keys, fingerprints } = this.c.hostKeys;
    let trusted = [...keys];
    if (fingerprints.length > 0) {
      const scan = await runLines(
        'ssh-keyscan',
        ['-p', String(this.c.port), '-T', String(this.c.connectTimeoutSeconds ?? 5), this.c.host],
        { what: `ssh-keyscan of ${this.c.host}:${this.c.port}`, signal, timeoutSeconds: 30 },
      );
      const scanned = scan.tail.filter((l) => !l.startsWith('#') && l.trim() !== '');
      if (scanned.length === 0) return false; // not listening yet
      const matching = keysMatchingFingerprints(scanned, fingerprints);
      if (matching.length === 0 && keys.length === 0) {
        throw new HostKeyMismatchError(
          `host key of ${this.c.host}:${this.c.port} does not match: it presents none of the expected fingerprints (${fingerprints.join(', ')}); refusing to connect`,
        );
      }
      trusted = [...trusted, ...matching];
    }
    await fs.writeFile(this.files.knownHostsFile, knownHostsText(HOST_KEY_ALIAS, trusted), { mode: 0o600 });
    this.knownHostsReady = true;
    return true;
  }

  async waitReady(timeoutSeconds: number, signal?: AbortSignal): Promise<void> {
    const started = Date.now();
    const deadline = started + timeoutSeconds * 1000;
    const maxPoll = (this.c.pollSeconds ?? 2) * 1000;
    let lastError = 'no answer yet';
    let lastReport = started;
    this.c.logger.info(`waiting for SSH on ${this.endpoint} (up to ${formatDuration(timeoutSeconds)})`);
    for (let attempt = 1; ; attempt++) {
      const left = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
      const connectTimeout = Math.min(this.c.connectTimeoutSeconds ?? 5, left);
      let haveHostKeys = false;
      try {
        haveHostKeys = await this.ensureKnownHosts(signal);
        if (!haveHostKeys) lastError = 'ssh-keyscan got no host key (sshd not listening yet)';
      } catch (err) {
        if (err instanceof HostKeyMismatchError || (err as { reason?: string }).reason === 'abort') throw err;
        lastError = (err as Error).message;
      }
      if (haveHostKeys) {
        // with a controlPath this connection becomes the master the later calls share
        const r = await runLines('ssh', sshExecArgv(this.c, this.files, 'true', connectTimeout), {
          what: `ssh to ${this.endpoint}`,
          signal,
          timeoutSeconds: connectTimeout + 10,
        }).catch((err: Error) => {
          if ((err as { reason?: string }).reason === 'abort') throw err;
          return { exitCode: 255, tail: [err.message] };
        });
        if (r.exitCode === 0) {
          this.c.logger.info(
            `SSH ready on ${this.endpoint} after ${formatDuration((Date.now() - started) / 1000)}`,
          );
          return;
        }
        const text = r.tail.join(' ').trim();
        if (HOST_KEY_FAILURE.test(text)) {
          throw new HostKeyMismatchError(
            `host key of ${this.c.host}:${this.c.port} does not match the trusted key (${text}); refusing to connect`,
          );
        }
        lastError = text || `ssh exited with ${r.exitCode}`;
      }
      if (Date.now() >= deadline) {
        throw new PipelineError(
          `SSH on ${this.endpoint} not ready after ${formatDuration(timeoutSeconds)} (${attempt} attempts): ${lastError}`,
        );
      }
      if (Date.now() - lastReport >= 10_000) {
        lastReport = Date.now();
        this.c.logger.info(
          `still waiting for SSH on ${this.endpoint} (${formatDuration((Date.now() - started) / 1000)} of ${formatDuration(timeoutSeconds)}): ${lastError}`,
        );
      }
      await sleep(Math.min(pollDelayMs(attempt, maxPoll), Math.max(0, deadline - Date.now())), signal);
    }
  }

  async exec(
    command: string,
    options: { timeoutSeconds?: number; signal?: AbortSignal; onOutput?: (line: string) => void },
  ): Promise<ExecResult> {
    await this.requireKnownHosts(options.signal);
    const r = await runLines('ssh', sshExecArgv(this.c, this.files, supervisedCommand(command)), {
      what: `remote command on ${this.c.host}`,
      stdin: 'pipe',
      signal: options.signal,
      timeoutSeconds: options.timeoutSeconds,
      onLine: (line) => options.onOutput?.(line),
    });
    return { exitCode: r.exitCode };
  }

  private async rsync(
    source: string,
    dest: string,
    what: string,
    o: { excludes?: string[]; mirror?: boolean; remoteMkdir?: string; signal?: AbortSignal } = {},
  ) {
    const { signal, ...opts } = o;
    await this.requireKnownHosts(signal);
    const argv = rsyncArgv({ remoteShell: rsyncRemoteShell(this.c, this.files), source, dest, ...opts });
    const r = await runLines('rsync', argv, { what, signal });
    if (r.exitCode !== 0)
      throw new PipelineError(`${what} failed (rsync exit ${r.exitCode}): ${r.tail.join(' ')}`);
  }

  async pushDir(
    localDir: string,
    remoteDir: string,
    excludes: string[],
    signal?: AbortSignal,
  ): Promise<void> {
    await this.rsync(
      dirSource(localDir),
      remoteSpec(this.c, dirSource(remoteDir)),
      `copying ${localDir} to ${this.c.host}:${remoteDir}`,
      { excludes, mirror: true, remoteMkdir: remoteDir, signal },
    );
  }

  async pushFile(localFile: string, remotePath: string, signal?: AbortSignal): Promise<void> {
    const parent = path.posix.dirname(remotePath);
    await this.rsync(
      localFile,
      remoteSpec(this.c, remotePath),
      `copying ${localFile} to ${this.c.host}:${remotePath}`,
      { remoteMkdir: parent !== '.' ? parent : undefined, signal },
    );
  }

  async pullFile(remotePath: string, localFile: string, signal?: AbortSignal): Promise<void> {
    await fs.mkdir(path.dirname(path.resolve(localFile)), { recursive: true });
    await this.rsync(remoteSpec(this.c, remotePath), localFile, `copying ${this.c.host}:${remotePath} back`, {
      signal,
    });
  }

  private async requireKnownHosts(signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new Error('SshShell used after close()');
    if (!(await this.ensureKnownHosts(signal))) {
      throw new PipelineError(`cannot verify ${this.c.host}:${this.c.port}: it presented no host key`);
    }
  }

  /** Ends the shared connection (if one was opened), then removes the key, known_hosts and socket. */
  async close(): Promise<void> {
    const first = !this.closed;
    this.closed = true;
    if (first && this.files.controlPath && this.knownHostsReady) {
      // exit 255 when no master runs (waitReady never connected): nothing to end
      await runLines('ssh', sshControlArgv(this.c, this.files, 'exit'), {
        what: `closing the SSH connection to ${this.endpoint}`,
        timeoutSeconds: 10,
      }).catch(() => undefined);
    }
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
