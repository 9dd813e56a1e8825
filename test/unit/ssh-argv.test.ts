import { pollDelayMs } from '../../src/adapters/ssh/ssh-shell';
import {
  CONTROL_PERSIST_SECONDS,
  controlPathFor,
  dirSource,
  HOST_KEY_ALIAS,
  remoteSpec,
  rsyncArgv,
  rsyncRemoteShell,
  sshControlArgv,
  sshExecArgv,
  sshOptions,
  supervisedCommand,
} from '../../src/adapters/ssh/argv';
import { shellJoin, shellQuote } from '../../src/core/shell-quote';

const ep = { host: '10.0.0.5', port: 22, user: 'ubuntu' };
const files = { identityFile: '/tmp/mp-ssh-x/id', knownHostsFile: '/tmp/mp-ssh-x/known_hosts' };

/** "-o A=1 -o B=2" pairs as a map, so tables can name only the options they care about. */
function optionMap(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-o') {
      const [k, v] = argv[i + 1].split('=');
      m.set(k, v);
    }
  }
  return m;
}

describe('sshOptions', () => {
  it.each([
    ['StrictHostKeyChecking', 'yes'],
    ['BatchMode', 'yes'],
    ['UserKnownHostsFile', '/tmp/mp-ssh-x/known_hosts'],
    ['GlobalKnownHostsFile', '/dev/null'],
    ['HostKeyAlias', HOST_KEY_ALIAS],
    ['UpdateHostKeys', 'no'],
    ['IdentitiesOnly', 'yes'],
    ['IdentityAgent', 'none'],
    ['PasswordAuthentication', 'no'],
    ['ConnectTimeout', '10'],
  ])('sets %s=%s', (key, value) => {
    expect(optionMap(sshOptions(ep, files)).get(key)).toBe(value);
  });

  it('never turns host key checking off', () => {
    const argv = sshOptions(ep, files).join(' ');
    expect(argv).not.toMatch(/StrictHostKeyChecking=(no|accept-new)/);
    expect(argv).not.toMatch(/UserKnownHostsFile=\/dev\/null/);
  });

  it.each([
    [{ host: 'h', port: 22, user: 'ubuntu' }, ['-p', '22', '-l', 'ubuntu']],
    [{ host: 'h', port: 2222, user: 'root' }, ['-p', '2222', '-l', 'root']],
  ])('port and user for %j', (endpoint, tail) => {
    const argv = sshOptions(endpoint, files, 7);
    expect(argv.slice(-4)).toEqual(tail);
    expect(argv.slice(0, 2)).toEqual(['-F', '/dev/null']);
    expect(argv).toEqual(expect.arrayContaining(['-i', '/tmp/mp-ssh-x/id']));
    expect(optionMap(argv).get('ConnectTimeout')).toBe('7');
  });
});

describe('connection sharing', () => {
  const shared = { ...files, controlPath: '/tmp/mp-ssh-x/%C' };

  it.each([
    ['ControlMaster', 'auto'],
    ['ControlPath', '/tmp/mp-ssh-x/%C'],
    ['ControlPersist', `${CONTROL_PERSIST_SECONDS}s`],
    // the shared connection changes nothing about how the host is verified
    ['StrictHostKeyChecking', 'yes'],
    ['UserKnownHostsFile', '/tmp/mp-ssh-x/known_hosts'],
    ['BatchMode', 'yes'],
  ])('with a controlPath: %s=%s', (key, value) => {
    expect(optionMap(sshOptions(ep, shared)).get(key)).toBe(value);
  });

  it('bounds a left-over master: ControlPersist is a finite time, never yes/0', () => {
    expect(CONTROL_PERSIST_SECONDS).toBeGreaterThan(0);
    expect(CONTROL_PERSIST_SECONDS).toBeLessThanOrEqual(600);
  });

  it('without a controlPath every call connects on its own', () => {
    const m = optionMap(sshOptions(ep, files));
    expect(m.get('ControlMaster')).toBe('no');
    expect(m.has('ControlPath')).toBe(false);
    expect(m.has('ControlPersist')).toBe(false);
  });

  it('rsync -e uses the same shared connection options as ssh', () => {
    const e = rsyncRemoteShell(ep, shared);
    const words = e.split(' ');
    expect(words[0]).toBe('ssh');
    expect(words.slice(1)).toEqual(sshOptions(ep, shared));
    expect(e).toContain('ControlPath=/tmp/mp-ssh-x/%C');
  });

  it.each([['exit' as const], ['check' as const]])(
    'sshControlArgv %s talks to the master of the host',
    (op) => {
      const argv = sshControlArgv(ep, shared, op);
      expect(argv.slice(-3)).toEqual(['-O', op, '10.0.0.5']);
      expect(optionMap(argv).get('ControlPath')).toBe('/tmp/mp-ssh-x/%C');
    },
  );

  const long = (n: number): string => '/' + 'd'.repeat(n - 1);
  it.each([
    ['/tmp/mp-ssh-AbC123', '/tmp/mp-ssh-AbC123/%C'],
    ['/tmp/mp-ssh-AbC123/', '/tmp/mp-ssh-AbC123/%C'],
    ['/tmp/50%-ssh', '/tmp/50%%-ssh/%C'],
    // 45 + 1 + 40 (%C) + 17 (ssh's temporary suffix) = 103: the longest that fits macOS's sun_path
    [long(45), `${long(45)}/%C`],
    // a macOS-length temp folder: %C no longer fits, a short fixed name does
    [long(46), `${long(46)}/cm`],
    [long(83), `${long(83)}/cm`],
    // too long even for that: no sharing rather than an ssh that cannot bind its socket
    [long(84), undefined],
  ])('controlPathFor(%s) = %s', (dir, expected) => {
    expect(controlPathFor(dir)).toBe(expected);
  });
});

describe('pollDelayMs', () => {
  it.each([
    [1, 2000, 250],
    [2, 2000, 500],
    [3, 2000, 1000],
    [4, 2000, 2000],
    [5, 2000, 2000],
    [1000, 2000, 2000],
    [1, 200, 200],
    [3, 600, 600],
  ])('after attempt %d with a %d ms cap: %d ms', (attempt, max, expected) => {
    expect(pollDelayMs(attempt, max)).toBe(expected);
  });
});

describe('sshExecArgv', () => {
  it('puts the host then the command last, as one argument', () => {
    const argv = sshExecArgv(ep, files, 'cd repo && make train');
    expect(argv.slice(-2)).toEqual(['10.0.0.5', 'cd repo && make train']);
  });
});

describe('remoteSpec', () => {
  it.each([
    [{ host: '10.0.0.5', port: 22, user: 'ubuntu' }, 'model-pipeline/', 'ubuntu@10.0.0.5:model-pipeline/'],
    [{ host: '::1', port: 22, user: 'root' }, '/tmp/x', 'root@[::1]:/tmp/x'],
    [
      { host: 'ip-10-0-0-5.ec2.internal', port: 22, user: 'ec2-user' },
      'a/b.zip',
      'ec2-user@ip-10-0-0-5.ec2.internal:a/b.zip',
    ],
  ])('%j %s -> %s', (endpoint, p, expected) => {
    expect(remoteSpec(endpoint, p)).toBe(expected);
  });
});

describe('rsyncArgv', () => {
  const shell = 'ssh -p 22';
  it.each([
    [
      'mirror with excludes',
      {
        remoteShell: shell,
        source: '/repo/',
        dest: 'u@h:dir/',
        excludes: ['.git', 'node_modules'],
        mirror: true,
      },
      [
        '-az',
        '--delete',
        '--exclude',
        '.git',
        '--exclude',
        'node_modules',
        '-e',
        shell,
        '/repo/',
        'u@h:dir/',
      ],
    ],
    [
      'single file, no delete',
      { remoteShell: shell, source: '/tmp/data.zip', dest: 'u@h:dir/data.zip' },
      ['-az', '-e', shell, '/tmp/data.zip', 'u@h:dir/data.zip'],
    ],
    [
      // the folder is made in the same session as rsync, quoted for the remote shell
      'creating the remote folder first',
      { remoteShell: shell, source: '/tmp/d.zip', dest: 'u@h:my dir/d.zip', remoteMkdir: 'my dir' },
      ['-az', '--rsync-path', "mkdir -p 'my dir' && rsync", '-e', shell, '/tmp/d.zip', 'u@h:my dir/d.zip'],
    ],
    [
      'duplicate and blank excludes dropped',
      { remoteShell: shell, source: 'a/', dest: 'b/', excludes: ['.git', '', '.git', ' '], mirror: false },
      ['-az', '--exclude', '.git', '-e', shell, 'a/', 'b/'],
    ],
  ])('%s', (_name, req, expected) => {
    expect(rsyncArgv(req)).toEqual(expected);
  });

  it('quotes -e words with spaces so rsync keeps them whole', () => {
    const e = rsyncRemoteShell(ep, { identityFile: '/tmp/my dir/id', knownHostsFile: '/tmp/kh' });
    expect(e.startsWith('ssh -F /dev/null ')).toBe(true);
    expect(e).toContain('"/tmp/my dir/id"');
    expect(e).toContain('StrictHostKeyChecking=yes');
  });

  it.each([
    ['/repo', '/repo/'],
    ['/repo/', '/repo/'],
  ])('dirSource(%s) = %s', (input, expected) => {
    expect(dirSource(input)).toBe(expected);
  });
});

describe('shellQuote', () => {
  it.each([
    ['plain', 'plain'],
    ['a/b-c.zip', 'a/b-c.zip'],
    ['', "''"],
    ['two words', "'two words'"],
    ["it's", "'it'\\''s'"],
    ['$HOME', "'$HOME'"],
    ['a;rm -rf /', "'a;rm -rf /'"],
  ])('%j -> %s', (input, expected) => {
    expect(shellQuote(input)).toBe(expected);
  });

  it('joins', () => {
    expect(shellJoin(['echo', 'a b'])).toBe("echo 'a b'");
  });
});

describe('supervisedCommand', () => {
  it('runs the command in its own group with stdin closed and kills it when the connection ends', () => {
    const wrapped = supervisedCommand('make train');
    expect(wrapped.startsWith("bash -c '")).toBe(true);
    expect(wrapped).toContain('set -m');
    expect(wrapped).toContain("bash -c '\\''make train'\\'' </dev/null &");
    expect(wrapped).toContain('cat >/dev/null; kill -TERM -- -$child');
  });
});
