import { ArrivingBytes } from '../../src/core/byte-ranges';

describe('ArrivingBytes', () => {
  it('merges ranges written out of order and answers waits as their bytes complete', async () => {
    const a = new ArrivingBytes();
    const order: string[] = [];
    const head = a.ready(0, 10).then(() => order.push('head'));
    const all = a.ready(0, 30).then(() => order.push('all'));
    a.add(20, 30); // the tail first
    a.add(0, 5);
    await Promise.resolve();
    expect(order).toEqual([]);
    expect(a.has(20, 30)).toBe(true);
    expect(a.has(0, 10)).toBe(false);
    a.add(5, 20);
    await Promise.all([head, all]);
    expect(order).toEqual(['head', 'all']);
    expect(a.has(0, 30)).toBe(true);
    expect(a.has(0, 31)).toBe(false);
    await expect(a.ready(3, 3)).resolves.toBeUndefined();
  });

  it('once closed, a wait for bytes that never came rejects (with the writer’s error), others still resolve', async () => {
    const a = new ArrivingBytes();
    a.add(0, 8);
    const pending = expect(a.ready(0, 16)).rejects.toThrow('connection reset');
    a.close(new Error('connection reset'));
    await pending;
    await expect(a.ready(8, 9)).rejects.toThrow('connection reset');
    await expect(a.ready(0, 8)).resolves.toBeUndefined();
    const b = new ArrivingBytes();
    const late = expect(b.ready(0, 1)).rejects.toThrow(/ended before these bytes arrived/);
    b.close();
    await late;
  });
});
