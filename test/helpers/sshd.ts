import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import * as path from 'node:path';
import { freePort } from './moto';
import { ownedServer } from './process';

export interface Sshd {
  host: string;
  port: number;
  user: string;
  /** Client private key (OpenSSH format) accepted by this server. */
  clientPrivateKey: string;
  clientPublicKey: string;
  /** `ssh-ed25519 AAAA…` of the server's host key. */
  hostPublicKey: string;
  dir: string;
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';

function keygen(file: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'model-pipeline-test', '-f', file]);
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port}: ${log()}`);
}

/**
 * A real OpenSSH server on 127.0.0.1 and a free port, logging in the current user (root in CI) with a
 * generated client key. It ends with the test process, or after 15 minutes (ownedServer).
 */
export async function startSshd(): Promise<Sshd> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: run scripts/install-test-deps.sh`);
  // sshd refuses to start without its privilege separation folder (Debian creates it only when run as a service)
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(path.join(tmpdir(), 'mp-sshd-'));
  keygen(path.join(dir, 'host_key'));
  keygen(path.join(dir, 'client_key'));
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'client_key.pub')));
  const port = await freePort();
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'host_key')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'PermitRootLogin yes',
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'MaxStartups 50',
    'LogLevel INFO',
  ].join('\n');
  const configFile = path.join(dir, 'sshd_config');
  writeFileSync(configFile, config + '\n');
  const child = spawn(...ownedServer(900, SSHD, ['-D', '-e', '-f', configFile]), {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  });
  try {
    await waitForPort(port, child, () => log);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    host: '127.0.0.1',
    port,
    user: userInfo().username,
    clientPrivateKey: readFileSync(path.join(dir, 'client_key'), 'utf8'),
    clientPublicKey: readFileSync(path.join(dir, 'client_key.pub'), 'utf8').trim(),
    hostPublicKey: readFileSync(path.join(dir, 'host_key.pub'), 'utf8').trim(),
    dir,
    stop: () =>
      new Promise<void>((resolve) => {
        const done = (): void => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGTERM');
      }),
  };
}

/** A second, unrelated host key: what a man in the middle would present. */
export function otherHostKey(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'mp-otherkey-'));
  try {
    keygen(path.join(dir, 'k'));
    return readFileSync(path.join(dir, 'k.pub'), 'utf8').trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
