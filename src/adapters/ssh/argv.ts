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
}

/**
 * Options for every ssh call: our files only (-F /dev/null, no agent, no user known_hosts), strict host key
 * checking against the generated known_hosts, never a prompt.
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
}

/** argv (without the leading `rsync`): archive + compression, excludes before paths. */
export function rsyncArgv(r: RsyncRequest): string[] {
  const excludes = [...new Set(r.excludes ?? [])].filter((e) => e.trim() !== '');
  return [
    '-az',
    ...(r.mirror ? ['--delete'] : []),
    ...excludes.flatMap((e) => ['--exclude', e]),
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
