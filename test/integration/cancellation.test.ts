import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';
import { TEST_AWS_ENV } from '../helpers/aws';
import { buildCliBin } from '../helpers/cli-bin';

/** A black-holed endpoint: 127.0.0.1, accepts every connection and never answers. */
async function blackHole(): Promise<{ url: string; server: Server; connections: () => number }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    for (const s of sockets) s.destroy();
    return close(cb);
  }) as Server['close'];
  return { url: `http://127.0.0.1:${port}`, server, connections: () => sockets.length };
}

describe('timeouts and cancellation against a black-holed endpoint', () => {
  let hole: Awaited<ReturnType<typeof blackHole>>;
  beforeEach(async () => {
    hole = await blackHole();
  });
  afterEach(async () => {
    await new Promise((r) => hole.server.close(r));
  });

  it('SIGTERM ends a status command waiting on S3 within 5 s', async () => {
    const bin = buildCliBin();
    const cwd = mkdtempSync(path.join(tmpdir(), 'mp-cancel-'));
    const child = spawn(
      path.join(bin, 'model-pipeline'),
      ['status', '--bucket', 'models', '--s3-endpoint', hole.url, '--region', 'us-east-1'],
      { cwd, env: { ...process.env, ...TEST_AWS_ENV }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // wait until the command is really waiting on the endpoint
    const deadline = Date.now() + 30_000;
    while (hole.connections() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(hole.connections()).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 300));
    const sent = Date.now();
    child.kill('SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise<'still running'>((r) => setTimeout(() => r('still running'), 5_000)),
    ]);
    const took = Date.now() - sent;
    if (code === 'still running') child.kill('SIGKILL');
    expect(code).not.toBe('still running');
    expect(took).toBeLessThan(5_000);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/SIGTERM received: stopping/);
  });

  it('without a signal, a call gives up at its request timeout after a capped number of tries', async () => {
    const store = new S3ObjectStore({
      bucket: 'models',
      region: 'us-east-1',
      endpoint: hole.url,
      timeouts: { connectionMs: 1_000, requestMs: 400, maxAttempts: 2 },
    });
    const started = Date.now();
    await expect(store.head('x/manifest.json')).rejects.toThrow(/timed? ?out|timeout/i);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(hole.connections()).toBe(2);
  });
});
