import { PipelineError } from './errors';

/**
 * What is safe to unpack from a zip archive, decided from its central directory alone (pure: the zip adapter
 * reads the entries, this decides). One rule set whatever system made the archive: the "made by" byte is
 * not trusted, the file-type bits of the external attributes are read for every host (Info-ZIP's unzip
 * honours them for unix, VMS, FAT and others alike).
 */

/** One central-directory record as the adapter read it. */
export interface RawArchiveEntry {
  /** The name the entry would be written under (a Unicode Path extra field wins over the header name). */
  name: string;
  /** Other names the archive gives the same entry (the header name when an extra field overrides it). */
  altNames?: string[];
  /** High byte of "version made by": 0 FAT, 2 VMS, 3 unix, 10 NTFS, ... Reported, never trusted. */
  madeBy: number;
  externalAttributes: number;
  compressionMethod: number;
  encrypted: boolean;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

export interface ArchiveLimits {
  maxEntries: number;
  /** Sum of the entries' uncompressed sizes. */
  maxUnpackedBytes: number;
  /** Unpacked size over archive size, checked once the unpacked size passes ratioFloorBytes. */
  maxRatio: number;
  ratioFloorBytes: number;
  /** Top-level names the caller keeps for itself (fetch-model's `.model-pipeline`). */
  reserved: string[];
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
  maxEntries: 100_000,
  maxUnpackedBytes: 128 * 1024 ** 3,
  // deflate tops out near 1032:1; model weights compress 1.1-3:1, text and checkpoints rarely past 20:1
  maxRatio: 100,
  ratioFloorBytes: 64 * 1024 ** 2,
  reserved: [],
};

/** What will be written for one entry. */
export interface PlannedEntry {
  /** Relative, `/`-separated, no trailing slash. */
  path: string;
  kind: 'file' | 'directory';
  size: number;
  /** 0644, or 0755 for directories and executables. */
  mode: number;
}

/** An archive refused before anything was written; problems name each entry and why. */
export class UnsafeArchiveError extends PipelineError {
  constructor(readonly problems: string[]) {
    super(
      `${problems.length === 1 ? 'one entry is' : `${problems.length} problems are`} refused: ` +
        problems.slice(0, 5).join('; ') +
        (problems.length > 5 ? `; and ${problems.length - 5} more` : ''),
    );
    this.name = 'UnsafeArchiveError';
  }
}

const S_IFMT = 0o170000;
const TYPE_NAMES: Record<number, string> = {
  0o010000: 'named pipe',
  0o020000: 'character device',
  0o060000: 'block device',
  0o120000: 'symbolic link',
  0o140000: 'socket',
};
const FILE = 0o100000;
const DIR = 0o040000;
const DOS_DIRECTORY = 0x10;
const DOS_REPARSE_POINT = 0x400;
/** Local file header without name and extra field: the least room an entry's data needs before it. */
const LOCAL_HEADER = 30;

/** Why a name (from an archive or a manifest) cannot be written under a folder, or undefined when it can. */
export function unsafeName(name: string): string | undefined {
  if (name === '') return 'empty name';
  if (name.includes('\0')) return 'NUL byte in the name';
  if (name.includes('\\')) return 'backslash in the name';
  if (name.startsWith('/')) return 'absolute name';
  if (/^[A-Za-z]:/.test(name)) return 'drive letter in the name';
  const parts = (name.endsWith('/') ? name.slice(0, -1) : name).split('/');
  if (parts.includes('..')) return '".." in the name';
  if (parts.some((p) => p === '' || p === '.')) return 'empty or "." part in the name';
  if (Buffer.byteLength(name) > 4096 || parts.some((p) => Buffer.byteLength(p) > 255)) return 'name too long';
  return undefined;
}

const show = (name: string): string => JSON.stringify(name);

function typeOf(e: RawArchiveEntry): { kind: 'file' | 'directory'; mode: number } | string {
  const unixMode = (e.externalAttributes >>> 16) & 0xffff;
  const type = unixMode & S_IFMT;
  const host = e.madeBy === 3 ? 'unix' : e.madeBy === 2 ? 'VMS' : `host ${e.madeBy}`;
  if (TYPE_NAMES[type]) return `${TYPE_NAMES[type]} (made by ${host})`;
  if (type !== 0 && type !== FILE && type !== DIR)
    return `unknown file type 0o${type.toString(8)} (made by ${host})`;
  if (e.externalAttributes & DOS_REPARSE_POINT) return `symbolic link (reparse point, made by ${host})`;
  const dir =
    e.name.endsWith('/') || type === DIR || (type === 0 && (e.externalAttributes & DOS_DIRECTORY) !== 0);
  if (dir) return { kind: 'directory', mode: 0o755 };
  return { kind: 'file', mode: type === FILE && (unixMode & 0o111) !== 0 ? 0o755 : 0o644 };
}

/**
 * Every entry checked (names, types, sizes, overlaps, limits); throws UnsafeArchiveError listing all that is
 * refused, else returns what to write. archiveBytes is the size of the zip file.
 */
export function planExtraction(
  entries: RawArchiveEntry[],
  archiveBytes: number,
  limits: Partial<ArchiveLimits> = {},
): PlannedEntry[] {
  const l = { ...DEFAULT_ARCHIVE_LIMITS, ...limits };
  const problems: string[] = [];
  if (entries.length > l.maxEntries)
    throw new UnsafeArchiveError([`${entries.length} entries, more than the limit of ${l.maxEntries}`]);
  const planned: PlannedEntry[] = [];
  const seen = new Map<string, 'file' | 'directory'>();
  let total = 0;
  for (const e of entries) {
    const bad = [e.name, ...(e.altNames ?? [])].map(unsafeName).find((x) => x !== undefined);
    if (bad) {
      problems.push(`${show(e.name)} (${bad})`);
      continue;
    }
    const t = typeOf(e);
    if (typeof t === 'string') {
      problems.push(`${show(e.name)} (${t})`);
      continue;
    }
    if (e.encrypted) problems.push(`${show(e.name)} (encrypted)`);
    else if (e.compressionMethod !== 0 && e.compressionMethod !== 8)
      problems.push(`${show(e.name)} (compression method ${e.compressionMethod} is not stored or deflate)`);
    else if (t.kind === 'directory' && e.uncompressedSize > 0)
      problems.push(`${show(e.name)} (a directory with ${e.uncompressedSize} bytes of data)`);
    const p = e.name.replace(/\/$/, '');
    const top = p.split('/')[0];
    if (l.reserved.includes(top)) problems.push(`${show(e.name)} (${top} is reserved for model-pipeline)`);
    if (seen.has(p)) problems.push(`${show(e.name)} (duplicate name)`);
    seen.set(p, t.kind);
    total += e.uncompressedSize;
    planned.push({ path: p, kind: t.kind, size: t.kind === 'file' ? e.uncompressedSize : 0, mode: t.mode });
  }
  // a name used as a file and as the folder of another entry
  for (const e of planned) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (seen.get(parent) === 'file')
        problems.push(`${show(e.path)} (inside ${show(parent)}, which is a file)`);
    }
  }
  // overlapping entries share compressed data: the non-recursive zip bomb
  const byOffset = [...entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1];
    if (byOffset[i].localHeaderOffset < prev.localHeaderOffset + LOCAL_HEADER + prev.compressedSize)
      problems.push(`${show(byOffset[i].name)} (overlaps ${show(prev.name)}: a zip bomb)`);
  }
  if (total > l.maxUnpackedBytes)
    problems.push(`unpacks to ${total} bytes, more than the limit of ${l.maxUnpackedBytes}`);
  else if (total > l.ratioFloorBytes && total / Math.max(archiveBytes, 1) > l.maxRatio)
    problems.push(
      `unpacks to ${total} bytes from ${archiveBytes} (${Math.round(total / Math.max(archiveBytes, 1))}:1, more than ${l.maxRatio}:1): a zip bomb`,
    );
  if (problems.length > 0) throw new UnsafeArchiveError(problems);
  return planned;
}
