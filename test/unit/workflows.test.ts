import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { validateAction, validateWorkflow } from '@action-validator/core';
import { parse } from 'yaml';
import { allOptions, commandNames } from '../../src/commands';
import { ROOT } from '../helpers/orb';

const WORKFLOW_DIRS = ['.github/workflows', 'examples/workflows'];
const workflows = WORKFLOW_DIRS.flatMap((d) => {
  try {
    return readdirSync(path.join(ROOT, d))
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => `${d}/${f}`);
  } catch {
    return [];
  }
});

interface Step {
  uses?: string;
  with?: Record<string, unknown>;
}
interface Workflow {
  on?: Record<string, unknown>;
  concurrency?: { group: string; 'cancel-in-progress': boolean };
  jobs: Record<
    string,
    {
      steps?: Step[];
      environment?: string;
      if?: string;
      strategy?: { matrix: unknown };
      outputs?: Record<string, string>;
    }
  >;
}

/** Steps that run this action: `uses: ./` here, `org/model-pipeline-action@v1` in the copyable examples. */
function actionSteps(wf: Workflow): Step[] {
  return Object.values(wf.jobs)
    .flatMap((j) => j.steps ?? [])
    .filter(
      (s) =>
        s.uses === './' ||
        s.uses?.startsWith('org/model-pipeline-action@') ||
        // the action's old name: found here so the test below fails on it
        s.uses?.startsWith('model-pipeline/model-pipeline@'),
    );
}

describe('action.yml and workflows validate (@action-validator/core)', () => {
  it('action.yml runs on node24 and validates', () => {
    const text = readFileSync(path.join(ROOT, 'action.yml'), 'utf8');
    expect((parse(text) as { runs: { using: string } }).runs.using).toBe('node24');
    // @action-validator/core 0.6 predates node24 in its schema: validate everything else with node20 there
    const forValidator = text.replace(/^(\s+using:\s*)node24\s*$/m, '$1node20');
    expect(forValidator).not.toBe(text);
    expect(validateAction(forValidator).errors).toEqual([]);
  });

  it('finds the workflows', () => {
    expect(workflows).toEqual(
      expect.arrayContaining(['.github/workflows/ci.yml', 'examples/workflows/model.yml']),
    );
  });

  it.each(workflows)('%s', (file) => {
    expect(validateWorkflow(readFileSync(path.join(ROOT, file), 'utf8')).errors).toEqual([]);
  });

  it('rejects a broken workflow (the check can fail)', () => {
    expect(validateWorkflow('on: push\njobs:\n  a:\n    runs-on: x\n    stepz: []\n').errors).not.toEqual([]);
  });

  it.each(workflows)('%s passes the action only inputs and commands it has', (file) => {
    const wf = parse(readFileSync(path.join(ROOT, file), 'utf8')) as Workflow;
    const inputs = new Set(['command', ...allOptions().map((o) => o.name)]);
    for (const step of actionSteps(wf)) {
      const given = Object.keys(step.with ?? {});
      expect(given.filter((g) => !inputs.has(g))).toEqual([]);
      expect(commandNames()).toContain(step.with?.command);
    }
  });
});

describe("the action's published name", () => {
  const docs = ['README.md', 'action.yml', 'CHANGELOG.md', 'RELEASING.md', 'orb/src/@orb.yml', ...workflows];
  it.each(docs)('%s calls the action org/model-pipeline-action, never by its old name', (file) => {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    expect(text.match(/uses:\s*model-pipeline\/model-pipeline@\S*/g) ?? []).toEqual([]);
    expect(text.match(/github\.com\/model-pipeline\/model-pipeline\b/g) ?? []).toEqual([]);
  });
});

describe('the workflows do what the README promises', () => {
  const load = (f: string) => parse(readFileSync(path.join(ROOT, f), 'utf8')) as Workflow;

  it('ci.yml smoke-runs the action itself on the local backend', () => {
    const smoke = actionSteps(load('.github/workflows/ci.yml')).filter((s) => s.uses === './');
    expect(smoke).toEqual([
      expect.objectContaining({
        with: expect.objectContaining({ command: 'needs-model', backend: 'local' }),
      }),
    ]);
  });

  it('model.yml: cancels per branch, trains from the needs-model matrix, gates production', () => {
    const wf = load('examples/workflows/model.yml');
    expect(wf.concurrency).toEqual({
      group: expect.stringContaining('github.ref'),
      'cancel-in-progress': true,
    });
    const { train } = wf.jobs;
    expect(JSON.stringify(train.strategy?.matrix)).toContain('needs.needs-model.outputs.matrix');
    expect(train.if).toContain("needs.needs-model.outputs.needs-model == 'true'");
    expect(wf.jobs['promote-staging'].if).toContain('refs/heads/main');
    expect(wf.jobs['promote-production'].environment).toBe('production');
    const commands = actionSteps(wf).map((s) => s.with?.command);
    expect(commands).toEqual(expect.arrayContaining(['needs-model', 'train', 'promote', 'sweep']));
  });

  it('sweep.yml: a scheduled sweep that asks GitHub which runs have finished', () => {
    const wf = load('examples/workflows/sweep.yml');
    expect(JSON.stringify(wf.on?.schedule)).toMatch(/cron/);
    const [step] = actionSteps(wf);
    expect(step.with).toMatchObject({ command: 'sweep', 'github-token': '${{ github.token }}' });
  });

  it('model.yml: main promotes the folder reviewed on the branch without a train job', () => {
    const wf = load('examples/workflows/model.yml');
    for (const job of ['promote-development', 'promote-staging', 'promote-production']) {
      const j = wf.jobs[job];
      expect(JSON.stringify(j.strategy?.matrix)).toContain('needs.needs-model.outputs.promote-matrix');
      const step = (j.steps ?? []).find((s) => s.with?.command === 'promote');
      expect(step?.with?.['model-prefix']).toBe('${{ matrix.model.model-prefix }}');
    }
    // a skipped train (needs-model found the branch's model) does not skip the promotions
    expect(wf.jobs['promote-development'].if).toContain("needs.train.result == 'skipped'");
    expect(wf.jobs['needs-model'].outputs?.['promote-matrix']).toContain('promote-matrix');
  });
});
