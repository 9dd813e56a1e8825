import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import * as path from 'node:path';
import { LocalCompute } from '../../src/adapters/local/local-compute';
import { LocalShell } from '../../src/adapters/local/local-shell';
import { SshShell, type SshShellConfig } from '../../src/adapters/ssh/ssh-shell';
import { ProcessStoppedError } from '../../src/adapters/system/process-lines';
import type { RemoteShell } from '../../src/core/ports';
import { startSshd, type Sshd } from '../helpers/sshd';
import { MemoryLogger } from '../helpers/memory-logger';
import { alive } from '../helpers/process';

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** An SshShell to this file's sshd, trusting its host key. */
const sshShell = (extra: Partial<SshShellConfig> = {}): SshShell =>
  new SshShell({
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    privateKey: sshd.clientPrivateKey,
    hostKeys: { keys: [sshd.hostPublicKey], fingerprints: [] },
    logger: new MemoryLogger(),
    pollSeconds: 0.2,
    ...extra,
  });

const tmp = (label: string): string => mkdtempSync(path.join(tmpdir(), `mp-${label}-`));

const shells: [string, () => RemoteShell][] = [
  ['LocalShell', () => new LocalShell(tmp('local-home'))],
  ['SshShell (real sshd)', () => sshShell()],
];

describe.each(shells)('RemoteShell contract: %s', (_name, make) => {
  let shell: RemoteShell;
  beforeEach(async () => {
    shell = make();
    await shell.waitReady(20);
  });
  afterEach(async () => {
    await shell.close?.();
  });

  async function run(command: string): Promise<{ exitCode: number; lines: string[] }> {
    const lines: string[] = [];
    const r = await shell.exec(command, { timeoutSeconds: 30, onOutput: (l) => lines.push(l) });
    return { exitCode: r.exitCode, lines };
  }

  it('mirrors a folder, leaving out excluded names and removing stale files', async () => {
    const src = tmp('src');
    for (const [rel, text] of [
      ['a.txt', 'a'],
      ['sub/b.txt', 'b'],
      ['.git/HEAD', 'x'],
      ['node_modules/m/index.js', 'x'],
      ['sub/cache.pyc', 'x'],
    ]) {
      mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
      writeFileSync(path.join(src, rel), text);
    }
    const dest = path.join(tmp('dest'), 'deep', 'repo');
    mkdirSync(dest, { recursive: true });
    writeFileSync(path.join(dest, 'stale.txt'), 'old');
    await shell.pushDir(src, dest, ['.git', 'node_modules', '*.pyc']);
    const r = await run(`cd '${dest}' && find . -type f | sort`);
    expect(r).toEqual({ exitCode: 0, lines: ['./a.txt', './sub/b.txt'] });
  });

  it('pushes a file into folders that do not exist yet and pulls it back', async () => {
    const file = path.join(tmp('file'), 'data.zip');
    writeFileSync(file, Buffer.from([0, 1, 2, 255]));
    const remote = path.join(tmp('remote'), 'x', 'y', 'data.zip');
    await shell.pushFile(file, remote);
    const back = path.join(tmp('back'), 'z', 'copy.zip');
    await shell.pullFile(remote, back);
    expect(readFileSync(back)).toEqual(Buffer.from([0, 1, 2, 255]));
    await expect(shell.pullFile(remote + '.missing', back)).rejects.toThrow();
  });

  it('streams stdout and stderr lines and returns the exit code', async () => {
    const r = await run('echo one; echo two >&2; printf "three"; exit 7');
    expect(r.exitCode).toBe(7);
    expect(r.lines.sort()).toEqual(['one', 'three', 'two']);
  });

  it('stops a command at its timeout, killing what it started', async () => {
    const pidFile = path.join(tmp('pid'), 'pid');
    const p = shell.exec(`sh -c 'echo $$ > ${pidFile}; exec sleep 30'`, { timeoutSeconds: 2 });
    await expect(p).rejects.toBeInstanceOf(ProcessStoppedError);
    await expect(p).rejects.toMatchObject({ reason: 'timeout' });
    expect(await gone(Number(readFileSync(pidFile, 'utf8')))).toBe(true);
  });
});

describe('LocalCompute', () => {
  it('terminate kills what runs in the instance and removes its folder; it is idempotent', async () => {
    const compute = new LocalCompute(tmp('instances'));
    const inst = await compute.launch({
      imageId: '',
      instanceTypes: [],
      subnetIds: [],
      securityGroupIds: [],
      spot: false,
      rootVolumeGiB: 1,
      maxRuntimeSeconds: 60,
      tags: { 'model-pipeline': 'true', run: 'x' },
    });
    expect((await compute.waitUntilRunning(inst.id)).state).toBe('running');
    expect((await compute.findByTags({ run: 'x' })).map((i) => i.id)).toEqual([inst.id]);
    const shell = new LocalShell(compute.homeOf(inst.id), { pidsDir: compute.pidsDirOf(inst.id) });
    const pidFile = path.join(tmp('pid'), 'pid');
    let terminating: Promise<void> | undefined;
    const r = await shell.exec(`echo $$ > ${pidFile}; echo started; sleep 30`, {
      onOutput: (l) => {
        if (l === 'started') terminating = compute.terminate(inst.id);
      },
    });
    await terminating;
    expect(r.exitCode).not.toBe(0);
    expect(await gone(Number(readFileSync(pidFile, 'utf8')))).toBe(true);
    expect(await compute.describe(inst.id)).toBeUndefined();
    expect(await compute.findByTags({ run: 'x' })).toEqual([]);
    await compute.terminate(inst.id);
    await compute.terminate('i-not-local');
  });
});

describe('SshShell connection sharing', () => {
  const make = (shareConnection?: boolean): SshShell => sshShell({ shareConnection });

  /**
   * Folders of the master connections to this test's sshd: ssh retitles its master `ssh: <ControlPath> [mux]`,
   * and %C is the SHA-1 of local host name, host, port and user.
   */
  function masters(): string[] {
    const hash = createHash('sha1').update(`${hostname()}${sshd.host}${sshd.port}${sshd.user}`).digest('hex');
    const out: string[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let title: string;
      try {
        title = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      } catch {
        continue; // exited meanwhile
      }
      const m = /^ssh: (\S+) \[mux\]$/.exec(title);
      if (m && path.basename(m[1]) === hash) out.push(path.dirname(m[1]));
    }
    return out;
  }

  async function clientPort(shell: SshShell): Promise<string> {
    const lines: string[] = [];
    const r = await shell.exec('echo "$SSH_CONNECTION"', {
      timeoutSeconds: 30,
      onOutput: (l) => lines.push(l),
    });
    expect(r.exitCode).toBe(0);
    // "client-ip client-port server-ip server-port"
    return lines[0].split(' ')[1];
  }

  it('runs every call over the connection waitReady opened, and close() ends it', async () => {
    const shell = make();
    try {
      await shell.waitReady(20);
      const [dir, ...more] = masters();
      expect(more).toEqual([]);
      // the socket lets anyone who can open it run commands as us: it lives in the shell's own 0700 folder
      expect(path.dirname(dir)).toBe(tmpdir());
      expect(path.basename(dir)).toMatch(/^mp-ssh-/);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      const first = await clientPort(shell);
      const file = path.join(tmp('share'), 'f.txt');
      writeFileSync(file, 'x');
      await shell.pushFile(file, path.join(tmp('share-remote'), 'f.txt'));
      expect(await clientPort(shell)).toBe(first);
      await shell.close();
      for (let i = 0; i < 50 && masters().includes(dir); i++) await new Promise((r) => setTimeout(r, 100));
      expect(masters()).not.toContain(dir);
      expect(existsSync(dir)).toBe(false);
    } finally {
      await shell.close(); // a second close is fine
    }
  });

  it('without sharing, each call is its own connection and no master is left', async () => {
    const shell = make(false);
    try {
      const before = masters();
      await shell.waitReady(20);
      expect(masters()).toEqual(before);
      expect(await clientPort(shell)).not.toBe(await clientPort(shell));
    } finally {
      await shell.close();
    }
  });

  it('says which copy failed when the remote folder cannot be created', async () => {
    const shell = make();
    try {
      await shell.waitReady(20);
      const blocker = path.join(tmp('blocked'), 'a-file');
      writeFileSync(blocker, 'x');
      const file = path.join(tmp('src'), 'd.zip');
      writeFileSync(file, 'd');
      await expect(shell.pushFile(file, path.join(blocker, 'sub', 'd.zip'))).rejects.toThrow(
        new RegExp(`copying ${file} to .*${blocker}/sub/d.zip failed .*Not a directory`),
      );
    } finally {
      await shell.close();
    }
  });

  it('close() before any connection resolves', async () => {
    await expect(make().close()).resolves.toBeUndefined();
  });
});
