import * as tc from '@actions/tool-cache';
import { createHash } from 'node:crypto';
import { constants, createReadStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PipelineError, messageOf } from '../../core/errors';
import {
  checksumFromSums,
  checksumMismatch,
  normalizeSha256,
  releaseFileName,
  releaseFor,
  releaseUrl,
  sumsUrl,
  type PackerRelease,
} from '../../core/packer';
import type { Logger } from '../../core/ports';

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The first executable `name` on PATH, like `which`. */
export async function findOnPath(name: string, pathVar: string | undefined): Promise<string | undefined> {
  for (const dir of (pathVar ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const full = path.join(dir, name);
    try {
      const st = await fs.stat(full);
      if (!st.isFile()) continue;
      await fs.access(full, constants.X_OK);
      return full;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface InstallOptions {
  version: string;
  /**
   * Expected sha256 of the release zip (the strong check: pin it). Without it the release's own SHA256SUMS,
   * fetched from the same place, is used: that catches a corrupt or wrong download, not a compromised mirror.
   */
  sha256?: string;
  /** Where releases are served (a mirror, tests); default releases.hashicorp.com. */
  baseUrl?: string;
  platform?: string;
  arch?: string;
  /** Tool cache and download folder outside GitHub Actions (which sets RUNNER_TOOL_CACHE / RUNNER_TEMP). */
  toolCacheDir?: string;
  tempDir?: string;
  logger: Logger;
}

async function withRunnerDirs<T>(o: InstallOptions, fn: () => Promise<T>): Promise<T> {
  const base = path.join(os.tmpdir(), 'model-pipeline');
  const want: Record<string, string | undefined> = {
    RUNNER_TOOL_CACHE: o.toolCacheDir ?? process.env.RUNNER_TOOL_CACHE ?? path.join(base, 'tools'),
    RUNNER_TEMP: o.tempDir ?? process.env.RUNNER_TEMP ?? path.join(base, 'tmp'),
  };
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(want)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/**
 * A pinned packer release from the tool cache, downloading it when missing. The zip must match the
 * expected sha256 before anything in it is used.
 */
export async function installPacker(o: InstallOptions): Promise<string> {
  const arch = o.arch ?? process.arch;
  const release = releaseFor(o.version, o.platform ?? process.platform, arch);
  const file = releaseFileName(release);
  const exe = release.os === 'windows' ? 'packer.exe' : 'packer';
  return withRunnerDirs(o, async () => {
    const cached = tc.find('packer', release.version, arch);
    if (cached) return path.join(cached, exe);
    const url = releaseUrl(release, o.baseUrl);
    const expected = o.sha256
      ? normalizeSha256(o.sha256, 'packer-sha256')
      : await publishedChecksum(release, file, o.baseUrl);
    o.logger.info(`downloading packer ${release.version} from ${url}`);
    let zip: string;
    try {
      zip = await tc.downloadTool(url);
    } catch (err) {
      throw new PipelineError(`cannot download packer ${release.version} from ${url}: ${messageOf(err)}`);
    }
    try {
      const mismatch = checksumMismatch(file, expected, await sha256File(zip));
      if (mismatch) throw new PipelineError(mismatch);
      const dir = await tc.extractZip(zip);
      try {
        await fs.chmod(path.join(dir, exe), 0o755);
      } catch {
        throw new PipelineError(`${file} from ${url} holds no ${exe}`);
      }
      const cachedDir = await tc.cacheDir(dir, 'packer', release.version, arch);
      await fs.rm(dir, { recursive: true, force: true });
      return path.join(cachedDir, exe);
    } finally {
      await fs.rm(zip, { force: true });
    }
  });
}

async function publishedChecksum(release: PackerRelease, file: string, baseUrl?: string): Promise<string> {
  const url = sumsUrl(release, baseUrl);
  let text: string;
  try {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    text = await r.text();
  } catch (err) {
    throw new PipelineError(`cannot read packer checksums from ${url}: ${messageOf(err)}; set packer-sha256`);
  }
  return checksumFromSums(text, file);
}

export interface ResolveOptions extends InstallOptions {
  pathVar: string | undefined;
}

/** packer on PATH when there is one, else the pinned release (installed once into the tool cache). */
export async function resolvePacker(o: ResolveOptions): Promise<string> {
  const onPath = await findOnPath(process.platform === 'win32' ? 'packer.exe' : 'packer', o.pathVar);
  if (onPath) return onPath;
  o.logger.info(`packer is not on PATH: installing the pinned release ${o.version}`);
  return installPacker(o);
}
