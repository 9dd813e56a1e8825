import { allOptions, allOutputs, COMMANDS } from '../../src/commands';
import { COMMON_OPTIONS } from '../../src/commands/common-options';
import { OUTPUTS, typedOutput, typedOutputs } from '../../src/commands/output-specs';
import { OPTION_TABLES, type OptionName, type PipelineOptionValues } from '../../src/commands/option-table';
import { mergeOptionSpecs, resolveOptions } from '../../src/core/options';

// compile-time checks: these lines do not build if the table loses a name or a default
const names: OptionName[] = ['region', 'train-timeout', 'dry-run', 'keep'];
const region: PipelineOptionValues['region'] = 'us-east-1'; // a string, not string | undefined
const timeout: PipelineOptionValues['train-timeout'] = '5h';
const port: PipelineOptionValues['ssh-port'] = 22;
const transfer: PipelineOptionValues['transfer'] = 'instance';

describe('the typed option table', () => {
  it('names every option a command declares at run time (so the type covers the whole table)', () => {
    const runtime = allOptions().map((o) => o.name);
    const typed = mergeOptionSpecs(OPTION_TABLES).map((o) => o.name);
    expect([...typed].sort()).toEqual([...runtime].sort());
    expect(runtime).toEqual(expect.arrayContaining(names));
    expect([region, timeout, port, transfer]).toEqual(['us-east-1', '5h', 22, 'instance']);
  });

  it('gives the region its default once, in the table, where help and docs show it', () => {
    const spec = COMMON_OPTIONS.find((o) => o.name === 'region');
    expect(spec?.default).toBe('us-east-1');
    const o = resolveOptions(COMMON_OPTIONS, { inputs: {}, env: {} });
    expect(o.string('region')).toBe('us-east-1');
    expect(
      resolveOptions(COMMON_OPTIONS, { inputs: {}, env: { AWS_REGION: 'eu-west-1' } }).string('region'),
    ).toBe('eu-west-1');
  });

  it('reading an option the command did not declare is a programming error, not a silent undefined', () => {
    const o = resolveOptions(COMMON_OPTIONS, { inputs: {}, env: {} });
    expect(() => (o as unknown as { string(n: string): unknown }).string('train-timeout')).toThrow(
      /not among the options/,
    );
  });

  it('the commands that ignore environment and ami-version do not offer them', () => {
    const without = ['needs-model', 'sweep', 'rotate', 'find', 'alias'];
    for (const name of without) {
      const own = COMMANDS[name].options.map((o) => o.name);
      expect(own).not.toContain('environment');
      expect(own).not.toContain('ami-version');
    }
    expect(COMMON_OPTIONS.map((o) => o.name)).not.toContain('environment');
    expect(COMMANDS['promote'].options.map((o) => o.name)).toContain('environment');
    expect(COMMANDS['build-ami'].options.map((o) => o.name)).toContain('ami-version');
  });
});

describe('output specs written once', () => {
  it('every output of every command is in the table (its --json type comes from there)', () => {
    for (const cmd of Object.values(COMMANDS))
      for (const o of cmd.outputs) expect(Object.keys(OUTPUTS)).toContain(o.name);
    expect(allOutputs().length).toBe(Object.keys(OUTPUTS).length);
    // the commands that take them from the table share one object per output
    expect(COMMANDS['rotate'].outputs[0]).toBe(OUTPUTS['dry-run']);
  });

  it('types values for --json: booleans, numbers, lists; empty is null; bad JSON stays text', () => {
    expect(typedOutput('boolean', 'true')).toBe(true);
    expect(typedOutput('boolean', 'false')).toBe(false);
    expect(typedOutput('boolean', '')).toBeNull();
    expect(typedOutput('integer', '42')).toBe(42);
    expect(typedOutput('json', '["a",1]')).toEqual(['a', 1]);
    expect(typedOutput('json', '{oops')).toBe('{oops');
    expect(typedOutput(undefined, 'true')).toBe('true');
    expect(typedOutputs([OUTPUTS.matrix], { matrix: '[]', other: '1' })).toEqual({ matrix: [], other: '1' });
  });
});
