import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { alive, ownedServer } from '../helpers/process';

/*
 * The test servers (moto, sshd) end with the process that started them: an interrupted `npm test` skips
 * jest's teardown and must not leave them running for their hour. A stand-in server writes its pid and sleeps.
 */
describe('ownedServer', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(path.join(tmpdir(), 'mp-owned-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function serverPid(file: string): Promise<number> {
    for (let i = 0; i < 100; i++) {
      try {
        const pid = Number(readFileSync(file, 'utf8'));
        if (pid > 0) return pid;
      } catch {
        // not written yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the stand-in server did not start');
  }

  async function gone(pid: number, withinMs: number): Promise<boolean> {
    for (const end = Date.now() + withinMs; Date.now() < end;) {
      if (!alive(pid)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return !alive(pid);
  }

  const standIn = (file: string): string[] => ['-c', `echo $$ > ${file}; exec sleep 300`];

  it('ends the server within seconds of its owner dying without cleanup (SIGKILL)', async () => {
    const owner = spawn('sleep', ['300'], { stdio: 'ignore' });
    const file = path.join(dir, 'killed-owner');
    const wrapper = spawn(...ownedServer(300, 'sh', standIn(file), owner.pid), { stdio: 'ignore' });
    const pid = await serverPid(file);
    expect(alive(pid)).toBe(true);
    owner.kill('SIGKILL');
    expect(await gone(pid, 5000)).toBe(true);
    await new Promise((r) => (wrapper.exitCode !== null ? r(null) : wrapper.once('exit', r)));
  });

  it('stops the server when the returned process is stopped, and keeps it while its owner lives', async () => {
    const file = path.join(dir, 'stopped');
    const wrapper = spawn(...ownedServer(300, 'sh', standIn(file)), { stdio: 'ignore' });
    const pid = await serverPid(file);
    await new Promise((r) => setTimeout(r, 1500)); // a check of the owner has passed: still running
    expect(alive(pid)).toBe(true);
    const exited = new Promise((r) => wrapper.once('exit', r));
    wrapper.kill('SIGTERM');
    await exited;
    expect(await gone(pid, 3000)).toBe(true);
  });
});
