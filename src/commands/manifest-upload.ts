import { storedRecord, type ManifestFile } from '../core/manifest';
import type { ObjectStore } from '../core/ports';

/**
 * Uploads one file of a model folder and returns its manifest entry: size and sha256 from the one read the
 * upload makes, and what the store reported for the new object (so promote can verify without reading it).
 */
export async function uploadManifestFile(
  store: ObjectStore,
  key: string,
  file: string,
  name: string,
): Promise<{ key: string; entry: ManifestFile }> {
  const h = await store.uploadFile(key, file, { sha256: true });
  return { key, entry: { name, size: h.size, sha256: h.sha256!, stored: storedRecord(h) } };
}
