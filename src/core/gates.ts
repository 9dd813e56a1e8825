import type { StoredObject } from './ports';
import type { Manifest } from './manifest';

/** What the store holds for one file of a model folder; sha256 only once its bytes were read. */
export interface ActualFile {
  size: number;
  sha256?: string;
}

/**
 * Every difference between the manifest and the folder: missing files, other sizes, other content hashes.
 * An empty list means the folder is exactly what train wrote.
 */
export function fileMismatches(manifest: Manifest, actual: ReadonlyMap<string, ActualFile>): string[] {
  const problems: string[] = [];
  for (const f of manifest.files) {
    const a = actual.get(f.name);
    if (!a) problems.push(`${f.name} is listed in the manifest but missing`);
    else if (a.size !== f.size) problems.push(`${f.name} is ${a.size} bytes, the manifest says ${f.size}`);
    else if (a.sha256 === undefined) problems.push(`${f.name} was not hashed`);
    else if (a.sha256 !== f.sha256)
      problems.push(
        `${f.name} has sha256 ${a.sha256.slice(0, 12)}…, the manifest says ${f.sha256.slice(0, 12)}…`,
      );
  }
  return problems;
}

/** Manifest file names must stay inside the folder: no absolute paths, no '..', no empty parts. */
export function unsafeFileNames(manifest: Manifest): string[] {
  return manifest.files
    .map((f) => f.name)
    .filter((n) => n.startsWith('/') || n.split('/').some((p) => p === '' || p === '.' || p === '..'));
}

/** How what the store reports now compares with what the manifest recorded at upload. */
export type StoredVerdict =
  /** Every fact both sides have is equal, and at least one of them identifies the content or version. */
  | { verdict: 'same' }
  /** The bytes are not the ones uploaded: a content checksum or the size differs, or the object is gone. */
  | { verdict: 'changed'; problem: string }
  /** Nothing comparable, or a difference that does not prove other bytes: only hashing them can tell. */
  | { verdict: 'unknown'; why: string };

function compositeParts(value: string): { base: string; parts?: string } {
  const cut = value.lastIndexOf('-');
  return cut > 0 ? { base: value.slice(0, cut), parts: value.slice(cut + 1) } : { base: value };
}

/**
 * Compares a file's record from its upload with what the store reports now, without reading bytes.
 * A checksum of the same algorithm and type decides about the content (a COMPOSITE one only over the same
 * number of parts: other part sizes give another value for the same bytes); VersionId and ETag must then
 * also match, since a rewrite changes them; when they differ but no checksum proves other bytes, the
 * answer is `unknown` and the caller hashes the bytes.
 */
export function compareStored(
  name: string,
  recorded: StoredObject & { size: number },
  now: StoredObject | undefined,
): StoredVerdict {
  if (!now) return { verdict: 'changed', problem: `${name} is listed in the manifest but missing` };
  if (now.size !== recorded.size)
    return {
      verdict: 'changed',
      problem: `${name} is ${now.size} bytes, the manifest says ${recorded.size}`,
    };
  const rc = recorded.checksum;
  const nc = now.checksum;
  let identified = false;
  if (rc && nc && rc.algorithm === nc.algorithm) {
    const r = rc.type === 'COMPOSITE' ? compositeParts(rc.value) : { base: rc.value };
    // some stores (and HeadObject on S3-compatible servers) leave out the type or the `-<parts>` suffix
    const n =
      nc.type === 'COMPOSITE' || rc.type === 'COMPOSITE' ? compositeParts(nc.value) : { base: nc.value };
    const sameKind = nc.type === undefined || rc.type === undefined || nc.type === rc.type;
    const sameParts = r.parts === undefined || n.parts === undefined || r.parts === n.parts;
    if (sameKind && sameParts) {
      if (r.base !== n.base)
        return {
          verdict: 'changed',
          problem: `${name} has ${rc.algorithm} ${nc.value} in the store, the manifest recorded ${rc.value} at upload: it was replaced`,
        };
      identified = true;
    }
  }
  if (recorded.versionId !== undefined && now.versionId !== undefined) {
    if (recorded.versionId !== now.versionId)
      return {
        verdict: 'unknown',
        why: `${name} was written again (version ${now.versionId}, uploaded as ${recorded.versionId})`,
      };
    identified = true;
  }
  if (recorded.etag !== undefined && now.etag !== undefined) {
    if (recorded.etag !== now.etag)
      return { verdict: 'unknown', why: `${name} has ETag ${now.etag}, uploaded as ${recorded.etag}` };
    identified = true;
  }
  if (!identified) return { verdict: 'unknown', why: `the store reports nothing to compare ${name} with` };
  return { verdict: 'same' };
}
