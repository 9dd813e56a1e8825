import { shellQuote } from '../../core/shell-quote';

/** The alias every known_hosts line is written for, so the file does not depend on host and port. */
export const HOST_KEY_ALIAS = 'model-pipeline-instance';

/** Files always left out of the code copied to the instance. */
export const DEFAULT_EXCLUDES: readonly string[] = ['.git', 'node_modules', '.model-store'];

export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
}

export interface SshFiles {
  identityFile: string;
  knownHostsFile: string;
  /** Socket of the shared connection (controlPathFor); without it every call opens its own connection. */
  controlPath?: string;
}

/**
 * How long an idle master connection outlives its last client: close() ends it at once, this bounds one
 * that a killed run left behind (it also dies with the server through ServerAliveInterval).
 */
export const CONTROL_PERSIST_SECONDS = 120;

/** sun_path is 104 bytes on macOS (108 on Linux), the terminating NUL included. */
const MAX_SOCKET_PATH = 103;
/** ssh binds the master at `<ControlPath>.<16 random chars>` and renames it into place. */
const MASTER_TEMP_SUFFIX = 17;
/** %C expands to the SHA-1 hex of local host, host, port and user. */
const PERCENT_C_LENGTH = 40;

/**
 * The ControlPath inside the shell's private (0700) folder: `%C` where it fits the socket path limit, a
 * short fixed name where the temp folder is long (macOS), none (no connection sharing) where even that
 * does not fit. The folder belongs to one endpoint, so the fixed name cannot collide.
 */
export function controlPathFor(privateDir: string): string | undefined {
  const dir = privateDir.replace(/\/+$/, '');
  // ssh expands % and ~ in ControlPath: a literal % in the folder must be doubled
  const escaped = dir.replace(/%/g, '%%');
  const fits = (nameLength: number): boolean =>
    dir.length + 1 + nameLength + MASTER_TEMP_SUFFIX <= MAX_SOCKET_PATH;
  if (fits(PERCENT_C_LENGTH)) return `${escaped}/%C`;
  if (fits(2)) return `${escaped}/cm`;
  return undefined;
}

/**
 * Options for every ssh call: our files only (-F /dev/null, no agent, no user known_hosts), strict host key
 * checking against the generated known_hosts, never a prompt. With a controlPath, calls share one
 * connection: the first (waitReady) authenticates and verifies the host key, the others ride on it.
 */
export function sshOptions(ep: SshEndpoint, files: SshFiles, connectTimeoutSeconds = 10): string[] {
  const o = (kv: string): string[] => ['-o', kv];
  return [
    '-F',
    '/dev/null',
    ...o('BatchMode=yes'),
    ...o('StrictHostKeyChecking=yes'),
    ...o(`UserKnownHostsFile=${files.knownHostsFile}`),
    ...o('GlobalKnownHostsFile=/dev/null'),
    ...o(`HostKeyAlias=${HOST_KEY_ALIAS}`),
    ...o('UpdateHostKeys=no'),
    ...o('IdentitiesOnly=yes'),
    ...o('IdentityAgent=none'),
    ...o('PasswordAuthentication=no'),
    ...o(`ConnectTimeout=${connectTimeoutSeconds}`),
    ...o('ServerAliveInterval=15'),
    ...o('ServerAliveCountMax=4'),
    ...o('LogLevel=ERROR'),
    ...(files.controlPath
      ? [
          ...o('ControlMaster=auto'),
          ...o(`ControlPath=${files.controlPath}`),
          ...o(`ControlPersist=${CONTROL_PERSIST_SECONDS}s`),
        ]
      : o('ControlMaster=no')),
    '-i',
    files.identityFile,
    '-p',
    String(ep.port),
    '-l',
    ep.user,
  ];
}

/** argv (without the leading `ssh`) running one remote command. */
export function sshExecArgv(
  ep: SshEndpoint,
  files: SshFiles,
  remoteCommand: string,
  connectTimeoutSeconds?: number,
): string[] {
  return [...sshOptions(ep, files, connectTimeoutSeconds), ep.host, remoteCommand];
}

/** argv (without the leading `ssh`) asking the master connection to `exit` or reporting whether it runs (`check`). */
export function sshControlArgv(ep: SshEndpoint, files: SshFiles, op: 'exit' | 'check'): string[] {
  return [...sshOptions(ep, files), '-O', op, ep.host];
}

/** `user@host:path`, with brackets around IPv6 addresses. */
export function remoteSpec(ep: SshEndpoint, remotePath: string): string {
  const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  return `${ep.user}@${host}:${remotePath}`;
}

/** rsync's -e value: rsync splits it on spaces and honours quotes, so quote what needs it. */
export function rsyncRemoteShell(ep: SshEndpoint, files: SshFiles, connectTimeoutSeconds?: number): string {
  return ['ssh', ...sshOptions(ep, files, connectTimeoutSeconds)]
    .map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `"${a}"`))
    .join(' ');
}

export interface RsyncRequest {
  /** The -e remote shell command (rsyncRemoteShell). */
  remoteShell: string;
  source: string;
  dest: string;
  excludes?: readonly string[];
  /** Remove files at the destination that the source does not have (mirror a folder). */
  mirror?: boolean;
  /**
   * Remote folder to create (mkdir -p) before rsync starts there: in the same session through
   * --rsync-path, which works with any rsync (--mkpath needs 3.2.3 on both ends) and saves a round trip.
   */
  remoteMkdir?: string;
}

/** argv (without the leading `rsync`): archive + compression, excludes before paths. */
export function rsyncArgv(r: RsyncRequest): string[] {
  const excludes = [...new Set(r.excludes ?? [])].filter((e) => e.trim() !== '');
  return [
    '-az',
    ...(r.mirror ? ['--delete'] : []),
    ...excludes.flatMap((e) => ['--exclude', e]),
    ...(r.remoteMkdir ? ['--rsync-path', `mkdir -p ${shellQuote(r.remoteMkdir)} && rsync`] : []),
    '-e',
    r.remoteShell,
    r.source,
    r.dest,
  ];
}

/** A folder's contents (trailing slash), so rsync copies into remoteDir rather than a sub-folder. */
export function dirSource(localDir: string): string {
  return localDir.endsWith('/') ? localDir : localDir + '/';
}

/**
 * Wraps a command so it dies with the connection: it runs in its own process group with stdin from
 * /dev/null, while a watcher reads the ssh channel's stdin and kills the group at EOF, i.e. when ssh on the
 * runner is killed (timeout, cancel). Without this a remote `make train` would outlive a cancelled job.
 */
export function supervisedCommand(command: string): string {
  const script = [
    'set -m',
    `bash -c ${shellQuote(command)} </dev/null &`,
    'child=$!',
    '{ cat >/dev/null; kill -TERM -- -$child 2>/dev/null; sleep 5; kill -KILL -- -$child 2>/dev/null; } &',
    'watcher=$!',
    // job control reports ("[1]+ Exit 4 …") on stderr; the command's own stderr is already attached
    'exec 2>/dev/null',
    'wait $child',
    'rc=$?',
    'kill -- -$watcher 2>/dev/null',
    'exit $rc',
  ].join('\n');
  return `bash -c ${shellQuote(script)}`;
}
