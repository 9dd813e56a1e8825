import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

interface Wf {
  on: {
    push: { paths: string[] };
    workflow_dispatch: { inputs: Record<string, { type: string }> };
  };
  jobs: Record<string, { steps: { uses?: string; with?: Record<string, unknown> }[] }>;
}

describe('.github/workflows/build-ami.yml', () => {
  const wf = parse(
    readFileSync(path.resolve(__dirname, '../../.github/workflows/build-ami.yml'), 'utf8'),
  ) as Wf;

  test('runs on .packer changes and by hand with ami-version and force', () => {
    expect(wf.on.push.paths).toEqual(['.packer/**']);
    expect(wf.on.workflow_dispatch.inputs['ami-version'].type).toBe('string');
    expect(wf.on.workflow_dispatch.inputs.force.type).toBe('boolean');
  });

  test('runs the action itself with build-ami, passing the dispatch inputs', () => {
    const step = wf.jobs['build-ami'].steps.find((s) => s.uses === './');
    expect(step?.with).toMatchObject({
      command: 'build-ami',
      'ami-version': '${{ inputs.ami-version }}',
      force: '${{ inputs.force || false }}',
    });
  });
});
