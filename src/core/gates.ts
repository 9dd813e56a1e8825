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
