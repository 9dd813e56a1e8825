import { UserError } from '../../src/core/errors';
import { planParts, S3_LIMITS, type PartPlan } from '../../src/core/multipart';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/**
 * What is wrong with a plan for `size` bytes, or '' when it covers [0, size) exactly, in order, within
 * S3's limits. Plain checks rather than one expect per part: plans have up to 10,000 parts.
 */
function planProblems(size: number, plan: PartPlan): string {
  let next = 0;
  for (const [i, p] of plan.parts.entries()) {
    if (p.number !== i + 1) return `part ${i} is numbered ${p.number}`;
    if (p.start !== next) return `part ${p.number} starts at ${p.start}, expected ${next}`;
    const last = i === plan.parts.length - 1;
    if (last ? p.length <= 0 || p.length > plan.partSize : p.length !== plan.partSize)
      return `part ${p.number} has ${p.length} bytes (part size ${plan.partSize})`;
    next += p.length;
  }
  if (next !== size) return `parts cover ${next} of ${size} bytes`;
  if (plan.parts.length > S3_LIMITS.maxParts) return `${plan.parts.length} parts`;
  if (plan.partSize < S3_LIMITS.minPartSize || plan.partSize > S3_LIMITS.maxPartSize)
    return `part size ${plan.partSize}`;
  return '';
}

describe('planParts', () => {
  it.each([
    // size, wanted part size, expected part size, expected part count
    [0, 8 * MiB, 8 * MiB, 0],
    [1, 8 * MiB, 8 * MiB, 1],
    [8 * MiB, 8 * MiB, 8 * MiB, 1],
    [8 * MiB + 1, 8 * MiB, 8 * MiB, 2],
    [1 * GiB, 8 * MiB, 8 * MiB, 128],
    [11 * MiB, 1 * MiB, 5 * MiB, 3], // raised to S3's 5 MiB minimum
    [10_000 * 8 * MiB, 8 * MiB, 8 * MiB, 10_000], // exactly at the part limit
    [10_000 * 8 * MiB + 1, 8 * MiB, 9 * MiB, 8889], // one byte over: grown by a whole MiB
    [200 * GiB, 8 * MiB, 21 * MiB, 9753],
    [5 * TiB, 8 * MiB, 525 * MiB, 9987],
  ])('%d bytes in %d-byte parts -> %d-byte parts x %d', (size, wanted, partSize, count) => {
    const plan = planParts(size, wanted);
    expect(plan.partSize).toBe(partSize);
    expect(plan.parts.length).toBe(count);
    expect(planProblems(size, plan)).toBe('');
  });

  it('covers every size exactly, for sizes around each boundary', () => {
    const sizes = [0, 1, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1, 80_000 * MiB - 1, 80_000 * MiB, 80_000 * MiB + 1];
    for (let k = 1; k < 40; k++) sizes.push(k * 7919 * MiB + k * 13);
    const problems: string[] = [];
    for (const size of sizes)
      for (const wanted of [1, 5 * MiB, 8 * MiB, 64 * MiB]) {
        const problem = planProblems(size, planParts(size, wanted));
        if (problem) problems.push(`${size} bytes in ${wanted}-byte parts: ${problem}`);
      }
    expect(problems).toEqual([]);
  });

  it('refuses what one S3 object cannot hold, saying why', () => {
    expect(() => planParts(5 * TiB + 1, 8 * MiB)).toThrow(UserError);
    expect(() => planParts(5 * TiB + 1, 8 * MiB)).toThrow(/5 TiB/);
    expect(() => planParts(-1, 8 * MiB)).toThrow(/whole number/);
    expect(() => planParts(1.5, 8 * MiB)).toThrow(/whole number/);
  });

  it.each([NaN, 0, -1, Infinity, undefined as unknown as number])('refuses part size %p', (partSize) => {
    expect(() => planParts(GiB, partSize)).toThrow(/part size must be a positive number/);
  });
});

describe('planProblems (the checker above)', () => {
  it('notices a gap, a short cover, a wrong number and too many parts', () => {
    const good = planParts(11 * MiB, 5 * MiB);
    const at = (i: number, change: object): PartPlan => ({
      ...good,
      parts: good.parts.map((p, j) => (j === i ? { ...p, ...change } : p)),
    });
    expect(planProblems(11 * MiB, good)).toBe('');
    expect(planProblems(11 * MiB, at(1, { start: 5 * MiB + 1 }))).toMatch(/starts at/);
    expect(planProblems(11 * MiB, at(2, { length: MiB - 1 }))).toMatch(/cover/);
    expect(planProblems(11 * MiB, at(0, { number: 2 }))).toMatch(/numbered/);
    const size = 10_001 * 5 * MiB;
    const tooMany = Array.from({ length: 10_001 }, (_, k) => ({
      number: k + 1,
      start: k * 5 * MiB,
      length: 5 * MiB,
    }));
    expect(planProblems(size, { partSize: 5 * MiB, parts: tooMany })).toBe('10001 parts');
  });
});
