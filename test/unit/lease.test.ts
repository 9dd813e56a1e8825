import {
  claimKey,
  folderOfRegistryKey,
  leaseExpired,
  leaseKey,
  newLease,
  parseLease,
  renewLease,
  retiringKey,
} from '../../src/core/lease';

describe('lease and retiring keys', () => {
  it('live in the scope registry, never in the model folder, and map back to the folder', () => {
    expect(leaseKey('search/1.0.0-abc1234/')).toBe('search/_registry/leases/1.0.0-abc1234.json');
    expect(leaseKey('1.0.0-abc1234/')).toBe('_registry/leases/1.0.0-abc1234.json');
    expect(retiringKey('m/search/1.0.0-abc1234/')).toBe('m/search/_registry/retiring/1.0.0-abc1234.json');
    expect(claimKey('search/1.0.0-abc1234/', 'n1')).toBe('search/_registry/claims/1.0.0-abc1234/n1.json');
    expect(folderOfRegistryKey(leaseKey('m/s/1.0.0-abc1234/'), 'leases')).toBe('m/s/1.0.0-abc1234/');
    expect(folderOfRegistryKey(retiringKey('1.0.0-abc1234/'), 'retiring')).toBe('1.0.0-abc1234/');
    expect(folderOfRegistryKey(claimKey('s/1.0.0-abc1234/', 'x'), 'claims')).toBe('s/1.0.0-abc1234/');
    expect(folderOfRegistryKey('s/_registry/aliases/a.json', 'leases')).toBeUndefined();
  });

  it('expires after its TTL unless renewed; an unreadable lease counts as expired', () => {
    const t0 = new Date('2026-01-01T00:00:00Z');
    const lease = newLease({ prefix: 'p/', owner: 'o', run: 'r', now: t0, ttlSeconds: 60 });
    expect(leaseExpired(lease, new Date('2026-01-01T00:00:59Z'))).toBe(false);
    expect(leaseExpired(lease, new Date('2026-01-01T00:01:00Z'))).toBe(true);
    const renewed = renewLease(lease, new Date('2026-01-01T00:00:50Z'), 60);
    expect(leaseExpired(renewed, new Date('2026-01-01T00:01:30Z'))).toBe(false);
    expect(renewed.acquiredAt).toBe(lease.acquiredAt);
    expect(parseLease('{"not":"a lease"}', 'x')).toBeUndefined();
    expect(leaseExpired(undefined, t0)).toBe(true);
  });
});
