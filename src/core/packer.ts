import { UserError } from './errors';

/**
 * Pure parts of driving Packer: argv, its `-machine-readable` output, versions, release files and
 * checksums. The adapter in src/adapters/packer runs the process.
 */

export interface MachineReadableLine {
  timestamp: string;
  /** Build name (e.g. `amazon-ebs.training`); empty for ui lines. */
  target: string;
  type: string;
  data: string[];
}

/** Packer escapes commas in data as `%!(PACKER_COMMA)` and newlines as a literal `\n`. */
export function unescapeMachineReadable(s: string): string {
  return s
    .replace(/%!\(PACKER_COMMA\)/g, ',')
    .replace(/\\n/g, '\n')
    .replace(/\\r/g, '\r');
}

/** `timestamp,target,type,data...`; undefined for lines that are not machine-readable. */
export function parseMachineReadableLine(line: string): MachineReadableLine | undefined {
  const parts = line.replace(/\r$/, '').split(',');
  if (parts.length < 3 || !/^\d+$/.test(parts[0])) return undefined;
  const [timestamp, target, type, ...data] = parts;
  if (type === '') return undefined;
  return { timestamp, target, type, data: data.map(unescapeMachineReadable) };
}

export interface ArtifactImage {
  region: string;
  imageId: string;
  /** Build that made it, e.g. `amazon-ebs.training`. */
  build: string;
}

/**
 * AMIs from `artifact,<n>,id,<region>:<ami>[,<region>:<ami>...]` lines. An artifact id lists one
 * `region:ami` pair per region (ami_regions copies), comma separated (escaped in the stream).
 */
export function artifactImages(lines: readonly string[]): ArtifactImage[] {
  const found: ArtifactImage[] = [];
  for (const line of lines) {
    const p = parseMachineReadableLine(line);
    if (!p || p.type !== 'artifact' || p.data[1] !== 'id') continue;
    const value = p.data.slice(2).join(',');
    for (const pair of value.split(',')) {
      const m = /^\s*([a-z0-9-]+):(ami-[0-9a-f]+)\s*$/.exec(pair);
      if (m) found.push({ region: m[1], imageId: m[2], build: p.target });
    }
  }
  return found;
}

/** The human text of a line, for the log: ui messages unescaped, errors flagged; undefined to skip. */
export function displayText(p: MachineReadableLine): { level: 'info' | 'error'; text: string } | undefined {
  if (p.type === 'ui') {
    const [kind, ...rest] = p.data;
    const text = rest.join(',').replace(/\n+$/, '');
    if (text.trim() === '') return undefined;
    return { level: kind === 'error' ? 'error' : 'info', text };
  }
  return undefined;
}

/** Error messages Packer reported (`<build>,error,<message>` lines), for the failure message. */
export function buildErrors(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (const line of lines) {
    const p = parseMachineReadableLine(line);
    if (p && p.type === 'error' && p.target !== '') out.push(`${p.target}: ${p.data.join(',').trim()}`);
  }
  return out;
}

/** `Packer v1.6.6`, `1.11.2`, `Packer v1.9.4 (abc)` -> [1, 6, 6]. */
export function parsePackerVersion(text: string): [number, number, number] | undefined {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function atLeast(v: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < 3; i++) {
    if (v[i] !== min[i]) return v[i] > min[i];
  }
  return true;
}

/** `packer init` exists from 1.7.0; older releases have no such command. */
export function supportsInit(version: readonly number[]): boolean {
  return atLeast(version, [1, 7, 0]);
}

/** From 1.10.0 the amazon builder is a plugin that the template must declare (required_plugins). */
export function needsPluginDeclaration(version: readonly number[]): boolean {
  return atLeast(version, [1, 10, 0]);
}

export type Variables = Record<string, string>;

function varArgs(variables: Variables): string[] {
  const args: string[] = [];
  for (const name of Object.keys(variables).sort()) {
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) {
      throw new UserError(`packer variable name "${name}" is not valid (letters, digits, _ and -)`);
    }
    args.push('-var', `${name}=${variables[name]}`);
  }
  return args;
}

export function initArgs(templateDir: string): string[] {
  return ['init', templateDir];
}

export function validateArgs(templateDir: string, variables: Variables): string[] {
  return ['validate', ...varArgs(variables), templateDir];
}

export function buildArgs(templateDir: string, variables: Variables): string[] {
  return ['build', '-machine-readable', '-color=false', ...varArgs(variables), templateDir];
}

/** `KEY=value` lines from the packer-vars option; the value may contain `=`. */
export function parseVarAssignments(items: readonly string[], where: string): Variables {
  const out: Variables = {};
  for (const item of items) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UserError(`${where}: "${item}" is not NAME=value`);
    out[item.slice(0, i).trim()] = item.slice(i + 1).trim();
  }
  return out;
}

export interface PackerRelease {
  version: string;
  os: string;
  arch: string;
}

/** Node's platform/arch names to HashiCorp's release names. */
export function releaseFor(version: string, platform: string, arch: string): PackerRelease {
  const os = ({ linux: 'linux', darwin: 'darwin', win32: 'windows', freebsd: 'freebsd' } as const)[
    platform as 'linux'
  ];
  const a = ({ x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' } as const)[arch as 'x64'];
  if (!os || !a) throw new UserError(`no packer release for ${platform}/${arch}: install packer on PATH`);
  if (!/^\d+\.\d+\.\d+$/.test(version)) {
    throw new UserError(`packer-version must be a release number like 1.13.1, got "${version}"`);
  }
  return { version, os, arch: a };
}

export function releaseFileName(r: PackerRelease): string {
  return `packer_${r.version}_${r.os}_${r.arch}.zip`;
}

export function releaseUrl(r: PackerRelease, baseUrl = 'https://releases.hashicorp.com/packer'): string {
  return `${baseUrl.replace(/\/+$/, '')}/${r.version}/${releaseFileName(r)}`;
}

export const DEFAULT_PACKER_VERSION = '1.13.1';

/** A sha256 in hex, lower-cased; accepts the `sha256:` prefix. A UserError for anything else. */
export function normalizeSha256(value: string, where: string): string {
  const v = value
    .trim()
    .toLowerCase()
    .replace(/^sha256:/, '');
  if (!/^[0-9a-f]{64}$/.test(v))
    throw new UserError(`${where} must be a sha256 (64 hex digits), got "${value}"`);
  return v;
}

/** The release's published checksum list, next to its zips. */
export function sumsUrl(r: PackerRelease, baseUrl = 'https://releases.hashicorp.com/packer'): string {
  return `${baseUrl.replace(/\/+$/, '')}/${r.version}/packer_${r.version}_SHA256SUMS`;
}

/** The checksum of one file in a SHA256SUMS text (`<hex>  <file>` lines). */
export function checksumFromSums(sums: string, file: string): string {
  for (const line of sums.split(/\r?\n/)) {
    const m = /^([0-9a-fA-F]{64})\s+\*?(\S+)\s*$/.exec(line);
    if (m && m[2] === file) return m[1].toLowerCase();
  }
  throw new UserError(
    `the release's SHA256SUMS lists no ${file}: check packer-version, or set packer-sha256`,
  );
}

export function checksumMismatch(file: string, expected: string, actual: string): string | undefined {
  if (expected.toLowerCase() === actual.toLowerCase()) return undefined;
  return `checksum mismatch for ${file}: expected sha256 ${expected}, got ${actual}; the download is corrupt or not the pinned release (check packer-version and packer-sha256)`;
}
