import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseConfig, parseOrbManifest } from '@circleci/circleci-config-parser';
import { COMMANDS, optionsOf } from '../../src/commands';
import type { OptionSpec } from '../../src/core/options';
import { optionTableLine, orbName, orbParameter, renderOrbSources } from '../../src/meta/orb';
import { parse } from 'yaml';
import {
  defaultsOf,
  flattenSteps,
  loadPackedOrb,
  parameterRefs,
  ROOT,
  substitute,
  type OrbComponent,
  type PackedOrb,
} from '../helpers/orb';

const orb = loadPackedOrb();
const packedText = readFileSync(path.join(ROOT, 'orb/orb.yml'), 'utf8');
const version = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
const SCRIPTS = path.join(ROOT, 'orb/src/scripts');
/** Keys of a workflow job entry that are CircleCI's, not the job's parameters. */
const WORKFLOW_KEYS = ['name', 'requires', 'context', 'filters', 'matrix', 'pre-steps', 'post-steps', 'type'];

function body(c: OrbComponent): OrbComponent {
  const rest: OrbComponent = { ...c };
  delete rest.parameters;
  delete rest.description;
  return rest;
}

describe('packed orb: structure', () => {
  it('has an orb command for every command of the dispatch table, with every option as a parameter', () => {
    for (const cmd of Object.values(COMMANDS)) {
      const c = orb.commands[orbName(cmd.name)];
      expect(c).toBeDefined();
      for (const spec of optionsOf(cmd)) {
        expect(c.parameters?.[orbName(spec.name)]).toEqual(orbParameter(spec));
      }
      expect(c.parameters?.cli_version).toMatchObject({ type: 'string', default: version });
      const run = (c.steps?.[0] as { run: { environment: Record<string, string> } }).run;
      expect(run.environment.MP_COMMAND).toBe(cmd.name);
      expect(run.environment.MP_OPTIONS.trim().split('\n')).toEqual(optionsOf(cmd).map(optionTableLine));
    }
  });

  it('resolves every include: each command runs the text of scripts/run.sh', () => {
    expect(packedText).not.toMatch(/<<\s*include\(/);
    const runSh = readFileSync(path.join(SCRIPTS, 'run.sh'), 'utf8');
    for (const name of Object.keys(COMMANDS).map(orbName)) {
      const run = (orb.commands[name].steps?.[0] as { run: { command: string } }).run;
      expect(run.command).toBe(runSh);
    }
  });

  it('declares every parameter it references, and every parameter has a default', () => {
    for (const section of ['commands', 'jobs', 'executors'] as const) {
      for (const [name, c] of Object.entries(orb[section])) {
        const declared = Object.keys(c.parameters ?? {});
        const undeclared = parameterRefs(body(c)).filter((r) => !declared.includes(r));
        expect({ [`${section}/${name}`]: undeclared }).toEqual({ [`${section}/${name}`]: [] });
        for (const [p, spec] of Object.entries(c.parameters ?? {})) {
          expect({ [`${section}/${name}.${p}`]: 'default' in spec }).toEqual({
            [`${section}/${name}.${p}`]: true,
          });
          if (spec.type === 'enum') expect(spec.enum).toContain(spec.default);
        }
      }
    }
  });

  it('jobs call orb commands with declared parameters only', () => {
    for (const [jobName, job] of Object.entries(orb.jobs)) {
      for (const step of flattenSteps(job.steps ?? [])) {
        if (typeof step !== 'object' || step === null) continue;
        const [key, args] = Object.entries(step)[0];
        const cmd = orb.commands[key];
        if (!cmd) continue;
        const extra = Object.keys((args as object) ?? {}).filter((a) => !(a in (cmd.parameters ?? {})));
        expect({ [`${jobName} -> ${key}`]: extra }).toEqual({ [`${jobName} -> ${key}`]: [] });
      }
    }
  });

  it('the train job sweeps with when: always, and only when a sweep command exists', () => {
    const train = orb.jobs.train;
    if (!COMMANDS.train) return expect(train).toBeUndefined();
    const sweep = flattenSteps(train.steps ?? []).find((s) => typeof s === 'object' && s && 'sweep' in s) as
      { sweep: { when: string } } | undefined;
    if (COMMANDS.sweep) expect(sweep?.sweep.when).toBe('always');
    expect(train.description).toMatch(/cancel/);
  });

  it('promote halts only when this commit has no model; train halts unless one must be built', () => {
    const haltScript = (job: OrbComponent): string => {
      const steps = flattenSteps(job.steps ?? []) as { run?: { name?: string; command?: string } }[];
      const found = steps.find((x) => x && typeof x === 'object' && x.run?.name?.startsWith('Stop unless'));
      return found!.run!.command!;
    };
    const halts = (script: string, env: Record<string, string>): boolean => {
      const bin = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
      execFileSync('bash', [
        '-c',
        `printf '#!/bin/sh\necho HALTED\n' > ${bin}/circleci-agent && chmod +x ${bin}/circleci-agent`,
      ]);
      const r = spawnSync('bash', ['-c', script], {
        encoding: 'utf8',
        env: { PATH: `${bin}:${process.env.PATH}`, ...env },
      });
      return r.stdout.includes('HALTED');
    };
    const promote = haltScript(orb.jobs.promote);
    const train = haltScript(orb.jobs.train);
    // main after a merge: nothing to build, the branch's model serves this commit
    const merged = { MP_NEEDS_MODEL: 'false', MP_RULE: 'ancestor', MP_MODEL_PREFIX: '1.1.0-abc1234/' };
    expect(halts(promote, merged)).toBe(false);
    expect(halts(promote, { ...merged, MP_RULE: 'newest' })).toBe(false);
    expect(halts(train, merged)).toBe(true);
    expect(halts(promote, { MP_NEEDS_MODEL: 'true', MP_RULE: 'version-bump' })).toBe(false);
    expect(halts(train, { MP_NEEDS_MODEL: 'true', MP_RULE: 'version-bump' })).toBe(false);
    // no model for this commit at all: nothing to promote
    expect(halts(promote, { MP_NEEDS_MODEL: 'false', MP_RULE: 'unchanged' })).toBe(true);
  });

  it('the train job stores the benchmark report it asks train to write', () => {
    const train = orb.jobs.train;
    const steps = flattenSteps(train.steps ?? []);
    const stored = steps.find((s) => typeof s === 'object' && s && 'store_test_results' in s) as
      { store_test_results: { path: string } } | undefined;
    expect(stored?.store_test_results.path).toBe('<< parameters.report_dir >>');
    expect((train.parameters?.report_dir as { default?: string }).default).toBe(
      'test-results/model-pipeline',
    );
  });

  it('examples use only this orb’s jobs, commands and executors, with declared parameters', () => {
    expect(Object.keys(orb.examples).length).toBeGreaterThan(0);
    const uses: string[] = [];
    const check = (kind: 'jobs' | 'commands' | 'executors', ref: string, args: object, allowed: string[]) => {
      const name = ref.replace(/^model-pipeline\//, '');
      expect({ [ref]: name in orb[kind] }).toEqual({ [ref]: true });
      const params = Object.keys(orb[kind][name]?.parameters ?? {});
      const extra = Object.keys(args ?? {}).filter((k) => !params.includes(k) && !allowed.includes(k));
      expect({ [ref]: extra }).toEqual({ [ref]: [] });
      uses.push(ref);
    };
    for (const ex of Object.values(orb.examples)) {
      const usage = ex.usage as Record<string, Record<string, Record<string, unknown>>>;
      for (const wf of Object.values(usage.workflows ?? {})) {
        for (const j of (wf.jobs as unknown[]) ?? []) {
          const [ref, args] = typeof j === 'string' ? [j, {}] : Object.entries(j as object)[0];
          if (ref.startsWith('model-pipeline/')) check('jobs', ref, args, WORKFLOW_KEYS);
        }
      }
      for (const job of Object.values(usage.jobs ?? {})) {
        const exe = job.executor as string | undefined;
        if (exe?.startsWith('model-pipeline/')) check('executors', exe, {}, []);
        for (const s of (job.steps as unknown[]) ?? []) {
          if (typeof s !== 'object' || s === null) continue;
          const [ref, args] = Object.entries(s)[0];
          if (ref.startsWith('model-pipeline/')) check('commands', ref, args as object, []);
        }
      }
    }
    expect(uses).toContain('model-pipeline/needs_model');
  });

  it('passes secrets as env var names: a secret option becomes an env_var_name parameter', () => {
    const secret: OptionSpec = {
      name: 'api-token',
      description: 'Token.',
      type: 'string',
      secret: true,
      env: ['MODEL_PIPELINE_API_TOKEN'],
    };
    const files = renderOrbSources(
      [{ name: 'fake', summary: 'Fake.', options: [secret], outputs: [] }],
      (c) => [...c.options],
      '9.9.9',
    );
    const cmd = parse(files.get('commands/fake.yml')!) as OrbComponent;
    expect(cmd.parameters?.api_token).toMatchObject({
      type: 'env_var_name',
      default: 'MODEL_PIPELINE_API_TOKEN',
    });
    expect(cmd.parameters?.cli_version.default).toBe('9.9.9');
    const env = (cmd.steps?.[0] as { run: { environment: Record<string, string> } }).run.environment;
    expect(env.MP_OPTIONS).toContain('secret api-token MODEL_PIPELINE_API_TOKEN');
    for (const s of Object.values(COMMANDS)
      .flatMap((c) => optionsOf(c))
      .filter((o) => o.secret)) {
      expect(orbParameter(s).type).toBe('env_var_name');
    }
  });
});

/**
 * @circleci/circleci-config-parser parses configs, not orbs, and knows neither parameter substitution nor
 * `when:`/`steps:` blocks. So: (1) each example is parsed against a manifest of this orb (it checks the
 * orb jobs, commands and executors it names exist); (2) the orb's own commands, executors and jobs are
 * instantiated with their defaults (substitution done here) and parsed as a plain config, which validates
 * every native step (run, when:, persist_to_workspace, attach_workspace, checkout) and the executor.
 */
describe('packed orb: @circleci/circleci-config-parser', () => {
  const params = (section: keyof PackedOrb) =>
    Object.fromEntries(
      Object.entries(orb[section] as Record<string, OrbComponent>).map(([k, v]) => [k, v.parameters ?? {}]),
    );
  const manifest = parseOrbManifest({
    commands: params('commands'),
    jobs: params('jobs'),
    executors: params('executors'),
  });

  it.each(Object.keys(orb.examples))('parses example %s', (name) => {
    const usage = { jobs: {}, ...(orb.examples[name].usage as object) };
    expect(() => parseConfig(usage, { 'model-pipeline': manifest })).not.toThrow();
  });

  function instantiated(o: PackedOrb): object {
    const inst = (c: OrbComponent) => substitute(body(c), defaultsOf(c.parameters)) as OrbComponent;
    const commands = Object.fromEntries(
      Object.entries(o.commands).map(([k, c]) => [k, { steps: flattenSteps(inst(c).steps ?? []) }]),
    );
    const executors = Object.fromEntries(Object.entries(o.executors).map(([k, c]) => [k, inst(c)]));
    const jobs = Object.fromEntries(
      Object.entries(o.jobs).map(([k, c]) => {
        const j = inst(c);
        return [k, { ...j, executor: { name: j.executor }, steps: flattenSteps(j.steps ?? []) }];
      }),
    );
    return { version: 2.1, commands, executors, jobs, workflows: { all: { jobs: Object.keys(jobs) } } };
  }

  it('parses the orb’s commands, executors and jobs instantiated with their defaults', () => {
    expect(() => parseConfig(instantiated(orb))).not.toThrow();
  });

  it('would catch a broken step (the check can fail)', () => {
    const broken = structuredClone(orb);
    const run = (broken.commands.needs_model.steps?.[0] as { run: Record<string, unknown> }).run;
    run.when = 'sometimes';
    expect(() => parseConfig(instantiated(broken))).toThrow();
  });
});

describe('orb scripts', () => {
  const scripts = readdirSync(SCRIPTS)
    .filter((f) => f.endsWith('.sh'))
    .map((f) => path.join(SCRIPTS, f));

  it('pass shellcheck', () => {
    expect(scripts.length).toBeGreaterThanOrEqual(2);
    const r = spawnSync('shellcheck', ['--shell=bash', '--severity=style', ...scripts], { encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('contain no `<<`, which CircleCI would read as a parameter reference', () => {
    for (const s of scripts) expect(readFileSync(s, 'utf8')).not.toContain('<<');
  });

  it('are bash scripts that parse', () => {
    for (const s of scripts) execFileSync('bash', ['-n', s]);
  });
});
