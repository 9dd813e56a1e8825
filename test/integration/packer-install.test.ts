import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { installPacker, resolvePacker, sha256File } from '../../src/adapters/packer/install';
import { PipelineError } from '../../src/core/errors';
import { quietLogger as logger } from '../helpers/memory-logger';

/** A release zip like HashiCorp's, holding a stand-in `packer` that prints its version. */
function makeZip(dir: string, version: string): string {
  const src = path.join(dir, `src-${version}`);
  mkdirSync(src);
  writeFileSync(path.join(src, 'packer'), `#!/bin/sh\necho "Packer v${version}"\n`);
  chmodSync(path.join(src, 'packer'), 0o755);
  const zip = path.join(dir, `packer_${version}_linux_amd64.zip`);
  execFileSync('zip', ['-q', '-j', zip, path.join(src, 'packer')]);
  return zip;
}

describe('packer install from a release server (127.0.0.1)', () => {
  let dir: string;
  let server: Server;
  let baseUrl: string;
  const requests: string[] = [];
  const zips: Record<string, string> = {};
  /** What the server publishes as each release's SHA256SUMS. */
  const sums: Record<string, string> = {};

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'mp-packer-install-'));
    for (const v of ['9.9.1', '9.9.2', '9.9.5', '9.9.6']) zips[v] = makeZip(dir, v);
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      const s = /^\/packer\/([\d.]+)\/packer_[\d.]+_SHA256SUMS$/.exec(req.url ?? '');
      if (s && sums[s[1]] !== undefined) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(sums[s[1]]);
        return;
      }
      const m = /^\/packer\/([\d.]+)\/(packer_[\d.]+_linux_amd64\.zip)$/.exec(req.url ?? '');
      if (!m || !zips[m[1]]) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/zip' }).end(readFileSync(zips[m[1]]));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/packer`;
  });

  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  function opts(version: string, sha256: string | undefined) {
    return {
      version,
      sha256,
      baseUrl,
      platform: 'linux',
      arch: 'x64',
      toolCacheDir: path.join(dir, 'tools'),
      tempDir: path.join(dir, 'tmp'),
      logger,
    };
  }

  test('the right checksum: installed into the tool cache, runnable, downloaded once', async () => {
    const sha = await sha256File(zips['9.9.1']);
    const bin = await installPacker(opts('9.9.1', sha));
    expect(bin.startsWith(path.join(dir, 'tools', 'packer', '9.9.1'))).toBe(true);
    expect(execFileSync(bin, ['version'], { encoding: 'utf8' }).trim()).toBe('Packer v9.9.1');
    const before = requests.length;
    expect(await installPacker(opts('9.9.1', sha))).toBe(bin);
    expect(requests.length).toBe(before);
  });

  test('a wrong checksum fails clearly and installs nothing', async () => {
    const wrong = 'ab'.repeat(32);
    const err = await installPacker(opts('9.9.2', wrong)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `checksum mismatch for packer_9\\.9\\.2_linux_amd64\\.zip: expected sha256 ${wrong}, got [0-9a-f]{64}`,
      ),
    );
    expect(requests).toContain('/packer/9.9.2/packer_9.9.2_linux_amd64.zip');
    // the next attempt downloads again: nothing was cached
    const sha = await sha256File(zips['9.9.2']);
    const bin = await installPacker(opts('9.9.2', sha));
    expect(execFileSync(bin, ['version'], { encoding: 'utf8' }).trim()).toBe('Packer v9.9.2');
  });

  test('a release the server does not have fails with the url', async () => {
    await expect(installPacker(opts('9.9.3', 'ab'.repeat(32)))).rejects.toThrow(
      /cannot download packer 9\.9\.3 from http:\/\/127\.0\.0\.1:\d+\/packer\/9\.9\.3\//,
    );
  });

  test("no pinned checksum: the release's SHA256SUMS is checked", async () => {
    sums['9.9.5'] = `${await sha256File(zips['9.9.5'])}  packer_9.9.5_linux_amd64.zip\n`;
    const bin = await installPacker(opts('9.9.5', undefined));
    expect(execFileSync(bin, ['version'], { encoding: 'utf8' }).trim()).toBe('Packer v9.9.5');
    expect(requests).toContain('/packer/9.9.5/packer_9.9.5_SHA256SUMS');
  });

  test('no pinned checksum and a SHA256SUMS that does not match: refused', async () => {
    sums['9.9.6'] = `${'ef'.repeat(32)}  packer_9.9.6_linux_amd64.zip\n`;
    await expect(installPacker(opts('9.9.6', undefined))).rejects.toThrow(
      /checksum mismatch for packer_9\.9\.6/,
    );
  });

  test('no pinned checksum and no SHA256SUMS: refused before downloading the zip', async () => {
    await expect(installPacker(opts('9.9.7', undefined))).rejects.toThrow(
      /cannot read packer checksums from .*packer_9\.9\.7_SHA256SUMS.*set packer-sha256/,
    );
    expect(requests).not.toContain('/packer/9.9.7/packer_9.9.7_linux_amd64.zip');
  });

  test('packer on PATH wins over any install', async () => {
    const binDir = path.join(dir, 'bin');
    mkdirSync(binDir);
    writeFileSync(path.join(binDir, 'packer'), '#!/bin/sh\necho "Packer v1.6.6"\n');
    chmodSync(path.join(binDir, 'packer'), 0o755);
    const before = requests.length;
    const bin = await resolvePacker({ ...opts('9.9.4', 'ab'.repeat(32)), pathVar: `/nonexistent:${binDir}` });
    expect(bin).toBe(path.join(binDir, 'packer'));
    expect(requests.length).toBe(before);
  });

  test('no packer on PATH: the pinned release is installed', async () => {
    const sha = await sha256File(zips['9.9.1']);
    const bin = await resolvePacker({ ...opts('9.9.1', sha), pathVar: '/nonexistent' });
    expect(execFileSync(bin, ['version'], { encoding: 'utf8' }).trim()).toBe('Packer v9.9.1');
  });
});
