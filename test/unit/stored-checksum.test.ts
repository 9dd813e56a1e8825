import { compareStored } from '../../src/core/gates';
import { manifestSchema } from '../../src/core/manifest';

const composite = { algorithm: 'CRC32', type: 'COMPOSITE' as const, value: 'sfwulg==-3', partSize: 8 << 20 };

describe('compareStored: a file as uploaded vs what the store reports now', () => {
  it('same checksum, ETag and version: same', () => {
    const rec = { size: 10, etag: '"e-3"', versionId: 'v1', checksum: composite };
    expect(compareStored('m', rec, { ...rec })).toEqual({ verdict: 'same' });
  });

  it('accepts a composite reported without its type or -<parts> suffix (S3-compatible servers)', () => {
    const rec = { size: 10, checksum: composite };
    const now = { size: 10, checksum: { algorithm: 'CRC32', value: 'sfwulg==' } };
    expect(compareStored('m', rec, now)).toEqual({ verdict: 'same' });
    const other = { size: 10, checksum: { algorithm: 'CRC32', value: 'AAAAAA==' } };
    expect(compareStored('m', rec, other)).toMatchObject({
      verdict: 'changed',
      problem:
        'm has CRC32 AAAAAA== in the store, the manifest recorded sfwulg==-3 at upload: it was replaced',
    });
  });

  it('missing or resized is changed', () => {
    expect(compareStored('m', { size: 10, checksum: composite }, undefined)).toMatchObject({
      verdict: 'changed',
      problem: 'm is listed in the manifest but missing',
    });
    expect(compareStored('m', { size: 10, etag: '"x"' }, { size: 11, etag: '"x"' })).toMatchObject({
      verdict: 'changed',
      problem: 'm is 11 bytes, the manifest says 10',
    });
  });

  it('what does not prove other bytes is unknown (so the caller hashes): other parts, type, algorithm, version, ETag', () => {
    const rec = { size: 10, checksum: composite };
    const verdict = (now: object) => compareStored('m', rec, { size: 10, ...now }).verdict;
    expect(verdict({ checksum: { ...composite, value: 'AAAAAA==-4' } })).toBe('unknown');
    expect(verdict({ checksum: { algorithm: 'CRC32', type: 'FULL_OBJECT', value: 'AAAAAA==' } })).toBe(
      'unknown',
    );
    expect(
      verdict({ checksum: { algorithm: 'CRC64NVME', type: 'FULL_OBJECT', value: 'AAAAAAAAAAA=' } }),
    ).toBe('unknown');
    expect(verdict({})).toBe('unknown');
    const versioned = { size: 10, versionId: 'v1', etag: '"a"', checksum: composite };
    expect(compareStored('m', versioned, { ...versioned, versionId: 'v2' }).verdict).toBe('unknown');
    expect(compareStored('m', versioned, { ...versioned, etag: '"b"' }).verdict).toBe('unknown');
    // a folder store: version only
    expect(compareStored('m', { size: 10, versionId: '5.1' }, { size: 10, versionId: '5.1' }).verdict).toBe(
      'same',
    );
    expect(compareStored('m', { size: 10, versionId: '5.1' }, { size: 10, versionId: '6.2' }).verdict).toBe(
      'unknown',
    );
  });

  it('a checksum mismatch wins over an equal version', () => {
    const rec = { size: 10, versionId: 'v1', checksum: composite };
    const now = { ...rec, checksum: { ...composite, value: 'AAAAAA==-3' } };
    expect(compareStored('m', rec, now).verdict).toBe('changed');
  });

  it('manifests with and without store records both parse', () => {
    const base = { schemaVersion: 1, model: { name: 'n', version: '1', sha: 's' } };
    const file = { name: 'model.zip', size: 1, sha256: 'a'.repeat(64) };
    expect(manifestSchema.safeParse({ ...base, files: [file] }).success).toBe(true);
    const recorded = manifestSchema.parse({
      ...base,
      files: [{ ...file, stored: { etag: '"x"', checksum: composite } }],
    });
    expect(recorded.files[0].stored?.checksum?.partSize).toBe(8 << 20);
  });
});
