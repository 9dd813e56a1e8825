import { spawnSync } from 'node:child_process';
import { heapFlagsFor, tuneHeap } from '../../src/adapters/system/heap';

const GROW = '--heap-growing-percent=400';
const EXTERNAL = '--external-memory-accounted-in-global-limit';

/** Runs `script` in a node process given `flags` as its first argument (JSON); its stdout and stderr. */
function child(script: string, flags: string[]): { stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['-e', script, JSON.stringify(flags)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

const SET_FLAGS = `for (const f of JSON.parse(process.argv[1])) require('node:v8').setFlagsFromString(f);`;

/**
 * Major GCs in a node process that sets the V8 flags, then allocates 1 GiB of 1 MiB Buffers, a few alive at a
 * time as a transfer holds them.
 */
function majorGcs(flags: string[]): number {
  const script = `${SET_FLAGS}
    const { PerformanceObserver, constants } = require('node:perf_hooks');
    let major = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
    });
    obs.observe({ entryTypes: ['gc'] });
    (async () => {
      const alive = [];
      for (let i = 0; i < 1024; i++) {
        const b = Buffer.allocUnsafe(1 << 20);
        b[0] = i;
        alive.push(b);
        if (alive.length > 8) alive.shift();
        if (i % 16 === 0) await new Promise(setImmediate);
      }
      await new Promise((r) => setTimeout(r, 50));
      obs.disconnect();
      process.stdout.write(String(major));
    })();`;
  return Number(child(script, flags).stdout);
}

describe('heap flags', () => {
  it('grows the heap on every V8; the external-memory flag on V8 13.6 to 14.x only (Node 24, 25)', () => {
    expect(heapFlagsFor('13.6.233.17-node.63')).toEqual([GROW, EXTERNAL]);
    expect(heapFlagsFor('14.1.146.11-node.25')).toEqual([GROW, EXTERNAL]);
    expect(heapFlagsFor('13.5.0.0')).toEqual([GROW]);
    expect(heapFlagsFor('15.0.1.2')).toEqual([GROW]); // not known to have it: no error line per run
    expect(heapFlagsFor('12.4.254.21-node.57')).toEqual([GROW]);
    expect(heapFlagsFor('11.3.244.8-node.38')).toEqual([GROW]);
    const set: string[] = [];
    tuneHeap('13.6.233.17-node.63', (f) => set.push(f));
    tuneHeap('12.4.254.21-node.57', (f) => set.push(f));
    expect(set).toEqual([GROW, EXTERNAL, GROW]);
  });

  it('the flags chosen for this node are accepted by its V8 (nothing printed)', () => {
    expect(child(SET_FLAGS, heapFlagsFor(process.versions.v8)).stderr).toBe('');
    // and the check can fail: a flag this V8 does not know is printed
    expect(child(SET_FLAGS, ['--no-such-flag-here']).stderr).toMatch(/unrecognized flag/);
  });

  const supported = heapFlagsFor(process.versions.v8).includes(EXTERNAL);
  (supported ? it : it.skip)('on this V8, Buffer churn starts far fewer major GCs with the flags', () => {
    const without = majorGcs([]);
    const withFlags = majorGcs(heapFlagsFor(process.versions.v8));
    expect(without).toBeGreaterThanOrEqual(4);
    expect(withFlags).toBeLessThanOrEqual(without / 2);
  });
});
