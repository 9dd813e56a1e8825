import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { parseModelConfig } from '../../src/core/config';
import { UserError } from '../../src/core/errors';
import {
  hashPathsCommand,
  packOutputsCommand,
  parseHashLines,
  parseSteps,
  planStepCaches,
  runOrder,
  stepCacheFolder,
  stepKey,
  stepKeyOfObject,
  unpackOutputsCommand,
} from '../../src/core/steps';

const CONFIG = 'models/a/search-config.toml';

function graphOf(toml: string) {
  const c = parseModelConfig(`version = "1.0.0"\n${toml}`, CONFIG);
  return parseSteps(c.values.steps, CONFIG);
}

function errorOf(toml: string): string {
  try {
    graphOf(toml);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('expected the steps to be refused');
}

describe('parseSteps', () => {
  it('no steps: undefined (the single train-command)', () => {
    expect(graphOf('[training]\nepochs = 3\n')).toBeUndefined();
  });

  it('reads [[steps]] with needs, inputs, outputs and a validate gate', () => {
    const g = graphOf(`
[[steps]]
name = "prepare"
command = "python prepare.py"
inputs = ["data/raw.csv", "store:datasets/extra.csv"]
outputs = ["work/data/"]

[[steps]]
name = "train"
command = "make train"
inputs = ["./work/data/train.csv"]
outputs = ["out/model.zip"]

[[steps]]
name = "validate"
command = "pytest --junitxml=reports/junit.xml"
needs = "train"
validate = true
junit = "reports/junit.xml"
`)!;
    expect(g.steps).toEqual([
      {
        name: 'prepare',
        command: 'python prepare.py',
        needs: [],
        inputs: [
          { kind: 'path', path: 'data/raw.csv' },
          { kind: 'store', key: 'datasets/extra.csv', path: 'extra.csv' },
        ],
        outputs: ['work/data'],
        validate: false,
        junit: undefined,
      },
      {
        name: 'train',
        command: 'make train',
        // reading prepare's output is needing prepare
        needs: ['prepare'],
        inputs: [{ kind: 'path', path: 'work/data/train.csv' }],
        outputs: ['out/model.zip'],
        validate: false,
        junit: undefined,
      },
      {
        name: 'validate',
        command: 'pytest --junitxml=reports/junit.xml',
        needs: ['train'],
        inputs: [],
        outputs: ['reports/junit.xml'],
        validate: true,
        junit: 'reports/junit.xml',
      },
    ]);
    expect(g.levels).toEqual([['prepare'], ['train'], ['validate']]);
  });

  it('reads [steps.<name>] tables and groups independent steps in one level', () => {
    const g = graphOf(`
[steps.a]
command = "a"
[steps.b]
command = "b"
[steps.c]
command = "c"
needs = ["a", "b"]
[steps.d]
command = "d"
needs = ["a"]
`)!;
    expect(g.levels).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    expect(runOrder(g)).toEqual(['a', 'b', 'c', 'd']);
  });

  it.each([
    [
      'a cycle',
      '[steps.a]\ncommand="x"\nneeds=["b"]\n[steps.b]\ncommand="y"\nneeds=["a"]\n',
      /steps: steps form a cycle: (a -> b -> a|b -> a -> b)$/,
    ],
    ['a step needing itself', '[steps.a]\ncommand="x"\nneeds=["a"]\n', /cycle: a -> a$/],
    [
      'a cycle through outputs',
      '[steps.a]\ncommand="x"\ninputs=["o/b"]\noutputs=["o/a"]\n[steps.b]\ncommand="y"\ninputs=["o/a"]\noutputs=["o/b"]\n',
      /cycle: /,
    ],
    [
      'an unknown need',
      '[steps.a]\ncommand="x"\nneeds=["prep"]\n',
      /step "a": needs "prep", which is not a step \(steps: a\)$/,
    ],
    [
      'two steps writing one output',
      '[steps.a]\ncommand="x"\noutputs=["out/m.zip"]\n[steps.b]\ncommand="y"\noutputs=["out/m.zip"]\n',
      /steps "a" and "b" both write "out\/m.zip"/,
    ],
    [
      "an output inside another step's output",
      '[steps.a]\ncommand="x"\noutputs=["out"]\n[steps.b]\ncommand="y"\noutputs=["out/m.zip"]\n',
      /steps "a" and "b" both write "out" and "out\/m.zip" \(one inside the other\)/,
    ],
    [
      'duplicate names',
      '[[steps]]\nname="a"\ncommand="x"\n[[steps]]\nname="a"\ncommand="y"\n',
      /two steps are named "a"/,
    ],
    ['a missing command', '[steps.a]\nneeds=[]\n', /step "a": needs a command$/],
    ['an unknown key', '[steps.a]\ncommand="x"\ndepends=["b"]\n', /unknown key "depends"/],
    [
      'a path leaving the repository',
      '[steps.a]\ncommand="x"\noutputs=["../x"]\n',
      /output "..\/x" must be a plain relative path/,
    ],
    [
      'an absolute input',
      '[steps.a]\ncommand="x"\ninputs=["/etc/passwd"]\n',
      /input "\/etc\/passwd" must be/,
    ],
    ['a bad name', '[[steps]]\nname="a b"\ncommand="x"\n', /step name "a b" may hold only/],
    ['no name', '[[steps]]\ncommand="x"\n', /steps\[0\] has no name/],
    ['junit without validate', '[steps.a]\ncommand="x"\njunit="j.xml"\n', /junit belongs to a validate step/],
    ['a store folder', '[steps.a]\ncommand="x"\ninputs=["store:data/"]\n', /must name one store object/],
    ['steps not tables', 'steps = "make"\n', /steps must be \[\[steps\]\] tables/],
  ])('refuses %s with one line naming the config', (_what, toml, pattern) => {
    const m = errorOf(toml);
    expect(m.startsWith(`${CONFIG}: steps`)).toBe(true);
    expect(m).toMatch(pattern);
  });
});

/** Random DAGs: step i may need any step before it, so the declaration order is one topological order. */
const dag = fc
  .integer({ min: 1, max: 12 })
  .chain((n) =>
    fc.tuple(
      fc.constant(n),
      fc.array(fc.array(fc.boolean(), { minLength: n, maxLength: n }), { minLength: n, maxLength: n }),
    ),
  )
  .map(([n, m]) =>
    Array.from({ length: n }, (_, i) => ({
      name: `s${i}`,
      needs: Array.from({ length: i }, (_, j) => j)
        .filter((j) => m[i][j])
        .map((j) => `s${j}`),
    })),
  );

function toml(steps: { name: string; needs: string[] }[]): string {
  return steps
    .map(
      (s) =>
        `[[steps]]\nname = "${s.name}"\ncommand = "run ${s.name}"\nneeds = [${s.needs.map((n) => `"${n}"`).join(', ')}]\n`,
    )
    .join('\n');
}

describe('parseSteps on random graphs', () => {
  it('levels hold every step once, each after all it needs, as early as possible', () => {
    fc.assert(
      fc.property(dag, fc.boolean(), (steps, reverse) => {
        const declared = reverse ? [...steps].reverse() : steps;
        const g = graphOf(toml(declared))!;
        const level = new Map<string, number>();
        g.levels.forEach((l, i) => l.forEach((s) => level.set(s, i)));
        expect([...level.keys()].sort()).toEqual(steps.map((s) => s.name).sort());
        expect(runOrder(g)).toHaveLength(steps.length);
        for (const s of steps) {
          for (const n of s.needs) expect(level.get(n)!).toBeLessThan(level.get(s.name)!);
          // as early as possible: level 0 without needs, else one after its latest need
          const expected = s.needs.length === 0 ? 0 : Math.max(...s.needs.map((n) => level.get(n)!)) + 1;
          expect(level.get(s.name)).toBe(expected);
        }
      }),
    );
  });

  it('a back edge from a step to one of its descendants is always reported as a cycle', () => {
    fc.assert(
      fc.property(dag, fc.nat(), fc.nat(), (steps, a, b) => {
        if (steps.length < 2) return;
        const i = a % steps.length;
        const j = b % steps.length;
        if (i === j) return;
        const [lo, hi] = i < j ? [i, j] : [j, i];
        // force a path lo -> hi, then make lo need hi
        if (!steps[hi].needs.includes(`s${lo}`)) steps[hi].needs.push(`s${lo}`);
        steps[lo].needs.push(`s${hi}`);
        const m = errorOf(toml(steps));
        expect(m).toMatch(/steps form a cycle: s\d+( -> s\d+)+$/);
        const cycle = m.split(': ').pop()!.split(' -> ');
        expect(cycle[0]).toBe(cycle[cycle.length - 1]);
        // each arrow is a real need: the step after the arrow needs the one before it
        for (let k = 0; k + 1 < cycle.length; k++) {
          const after = steps.find((s) => s.name === cycle[k + 1])!;
          expect(after.needs).toContain(cycle[k]);
        }
      }),
    );
  });
});

const hex = fc.stringMatching(/^[0-9a-f]{64}$/);

describe('stepKey', () => {
  const base = {
    command: 'make train',
    outputs: ['out/model.zip'],
    inputs: { 'data/raw.csv': 'a'.repeat(64), 'store:d/x.csv': 'b'.repeat(64) },
    upstream: { prepare: 'c'.repeat(64) },
  };

  it('is a sha256 that does not depend on the order inputs are listed in', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1 }), hex), (inputs) => {
        const entries = Object.entries(inputs);
        const k1 = stepKey({ ...base, inputs: new Map(entries) });
        const k2 = stepKey({ ...base, inputs: new Map([...entries].reverse()) });
        expect(k1).toBe(k2);
        expect(k1).toMatch(/^[0-9a-f]{64}$/);
      }),
    );
  });

  it('changes with the command, an output, any input hash or any upstream key', () => {
    const k = stepKey(base);
    expect(stepKey({ ...base })).toBe(k);
    expect(stepKey({ ...base, command: 'make train ' })).not.toBe(k);
    expect(stepKey({ ...base, outputs: ['out/other.zip'] })).not.toBe(k);
    expect(stepKey({ ...base, upstream: { prepare: 'd' + 'c'.repeat(63) } })).not.toBe(k);
    expect(stepKey({ ...base, upstream: {} })).not.toBe(k);
    fc.assert(
      fc.property(hex, (h) => {
        fc.pre(h !== 'a'.repeat(64));
        expect(stepKey({ ...base, inputs: { ...base.inputs, 'data/raw.csv': h } })).not.toBe(k);
      }),
    );
  });

  it('cache folders sit under _steps of the store prefix and map back to their key', () => {
    const key = 'e'.repeat(64);
    expect(stepCacheFolder('', key)).toBe(`_steps/${key}/`);
    expect(stepCacheFolder('/models/', key)).toBe(`models/_steps/${key}/`);
    expect(stepKeyOfObject('models', `models/_steps/${key}/outputs.tar.gz`)).toBe(key);
    expect(stepKeyOfObject('models', `models/1.0.0-abcdef1/model.zip`)).toBeUndefined();
    expect(stepKeyOfObject('', `_steps/nothex/step.json`)).toBeUndefined();
  });
});

describe('host commands', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'mp-steps-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const sh = (cmd: string): string => execFileSync('bash', ['-c', cmd], { cwd: dir, encoding: 'utf8' });

  it('hash files and folders by content and names what is missing', () => {
    mkdirSync(path.join(dir, 'd/sub'), { recursive: true });
    writeFileSync(path.join(dir, 'f.txt'), 'hello');
    writeFileSync(path.join(dir, 'd/sub/x'), '1');
    writeFileSync(path.join(dir, 'd/y'), '2');
    const run = () => parseHashLines(sh(hashPathsCommand(['f.txt', 'd', 'nope'])).split('\n'));
    const first = run();
    expect(first.missing).toEqual(['nope']);
    expect(first.hashes.get('f.txt')).toBe(
      '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
    );
    expect(run().hashes.get('d')).toBe(first.hashes.get('d'));
    writeFileSync(path.join(dir, 'd/sub/x'), '3');
    expect(run().hashes.get('d')).not.toBe(first.hashes.get('d'));
  });

  it('pack then unpack gives the outputs back; a missing output exits 44', () => {
    mkdirSync(path.join(dir, 'out'), { recursive: true });
    writeFileSync(path.join(dir, 'out/m.zip'), 'model');
    writeFileSync(path.join(dir, 'j.xml'), '<x/>');
    sh(packOutputsCommand(['out', 'j.xml'], '.mp/k.tgz'));
    writeFileSync(path.join(dir, 'out/m.zip'), 'changed');
    writeFileSync(path.join(dir, 'out/stray'), 'stray');
    sh(unpackOutputsCommand(['out', 'j.xml'], '.mp/k.tgz'));
    expect(sh('cat out/m.zip; ls out; ls .mp | wc -l')).toBe('modelm.zip\n0\n');
    expect(() => sh(packOutputsCommand(['out', 'gone'], '.mp/k2.tgz'))).toThrow(/MP-MISSING gone|44/);
  });
});

describe('planStepCaches', () => {
  const now = new Date('2026-06-01T00:00:00Z');
  const days = (n: number): Date => new Date(now.getTime() - n * 86_400_000);
  const k = (c: string): string => c.repeat(64);
  const objects = [
    { key: `m/_steps/${k('a')}/outputs.tar.gz`, size: 10, lastModified: days(30) },
    { key: `m/_steps/${k('a')}/step.json`, size: 1, lastModified: days(30) },
    { key: `m/_steps/${k('b')}/step.json`, size: 1, lastModified: days(30) },
    { key: `m/_steps/${k('c')}/step.json`, size: 1, lastModified: days(2) },
    { key: `m/1.0.0-abcdef1/model.zip`, size: 5, lastModified: days(30) },
  ];

  it('deletes old caches no kept model records, step.json first; keeps recorded and recent ones', () => {
    const plan = planStepCaches({ objects, root: 'm', referenced: new Set([k('b')]), now, graceDays: 14 });
    expect(plan.map((e) => [e.key[0], e.action])).toEqual([
      ['a', 'delete'],
      ['b', 'keep'],
      ['c', 'keep'],
    ]);
    expect(plan[0].objectKeys).toEqual([`m/_steps/${k('a')}/step.json`, `m/_steps/${k('a')}/outputs.tar.gz`]);
    expect(plan[0].bytes).toBe(11);
    expect(plan[2].reason).toMatch(/grace period/);
  });

  it('with no grace every unrecorded cache goes', () => {
    const plan = planStepCaches({ objects, root: 'm', referenced: new Set(), now, graceDays: 0 });
    expect(plan.every((e) => e.action === 'delete')).toBe(true);
  });
});
