import { DescribeImagesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ec2ClientConfig, Ec2Compute } from '../../src/adapters/aws/ec2-compute';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { sweepCommand } from '../../src/commands/sweep';
import type { CommandResult } from '../../src/commands/types';
import { PipelineError } from '../../src/core/errors';
import type { Clock, Compute, LaunchRequest } from '../../src/core/ports';
import { buildContext, runCommand } from '../../src/runner';
import { motoEndpoint } from '../helpers/aws';
import { MemoryLogger } from '../helpers/memory-logger';

// moto's instances have fake 10.x addresses: this file only uses the EC2 API, never the network

const run = randomBytes(4).toString('hex');
const client = (): EC2Client => new EC2Client(ec2ClientConfig({ endpoint: motoEndpoint() }));
const HOUR = 3600_000;
const clockAt = (offsetMs: number): Clock => ({
  now: () => new Date(Date.now() + offsetMs),
  sleep: async () => undefined,
});

let imageId: string;
let expiredId: string;
let expiredToo: string;
let freshId: string;
let untaggedId: string;

function request(caseTag: string, maxRuntimeSeconds: number): LaunchRequest {
  return {
    imageId,
    instanceTypes: ['t3.micro'],
    subnetIds: [],
    securityGroupIds: [],
    spot: false,
    rootVolumeGiB: 8,
    maxRuntimeSeconds,
    tags: { 'sweep-test': run, 'sweep-case': caseTag, 'model-pipeline:model-prefix': `1.0.0-${run}` },
  };
}

/** The real EC2 adapter, but the sweep only sees this file's instances: the moto server is shared. */
function scoped(real: Ec2Compute, failTerminate = new Set<string>()): Compute {
  return {
    launch: (r, s) => real.launch(r, s),
    describe: (id) => real.describe(id),
    waitUntilRunning: (id, t, s) => real.waitUntilRunning(id, t, s),
    terminate: async (id) => {
      if (failTerminate.has(id)) throw new PipelineError(`terminating instance ${id}: injected failure`);
      return real.terminate(id);
    },
    findByTags: (tags) => real.findByTags({ ...tags, 'sweep-test': run }),
  };
}

async function sweep(
  inputs: Record<string, string>,
  over: { compute?: Compute; clock?: Clock } = {},
): Promise<CommandResult & { log: string[] }> {
  const logger = new MemoryLogger();
  const ctx = await buildContext(sweepCommand, {
    command: 'sweep',
    inputs: { backend: 'aws', 'ec2-endpoint': motoEndpoint(), region: 'us-east-1', ...inputs },
    env: {},
    cwd: mkdtempSync(path.join(tmpdir(), 'mp-sweep-')),
    logger,
    state: new MemoryState(),
    signal: new AbortController().signal,
  });
  const real = ctx.deps.compute();
  expect(real).toBeInstanceOf(Ec2Compute);
  ctx.deps.compute = () => over.compute ?? scoped(real as Ec2Compute);
  if (over.clock) ctx.deps.clock = over.clock;
  const result = await sweepCommand.run(ctx);
  return { ...result, log: logger.lines };
}

async function state(id: string): Promise<string | undefined> {
  return (await new Ec2Compute({ endpoint: motoEndpoint() }).describe(id))?.state;
}

beforeAll(async () => {
  const c = client();
  imageId = (await c.send(new DescribeImagesCommand({}))).Images!.find((i) => i.RootDeviceName)!.ImageId!;
  // launched "10 hours ago" as far as the tags go: its expires-at deadline has passed
  const past = new Ec2Compute({ endpoint: motoEndpoint(), clock: clockAt(-10 * HOUR) });
  expiredId = (await past.launch(request('expired', 3600))).id;
  expiredToo = (await past.launch(request('expired-too', 7200))).id;
  const now = new Ec2Compute({ endpoint: motoEndpoint() });
  freshId = (await now.launch(request('fresh', 6 * 3600))).id;
  const plain = await c.send(
    new RunInstancesCommand({
      ImageId: imageId,
      MinCount: 1,
      MaxCount: 1,
      InstanceType: 't3.micro',
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'sweep-test', Value: run }] }],
    }),
  );
  untaggedId = plain.Instances![0].InstanceId!;
});

afterAll(async () => {
  const compute = new Ec2Compute({ endpoint: motoEndpoint() });
  for (const id of [expiredId, expiredToo, freshId, untaggedId]) if (id) await compute.terminate(id);
});

describe('sweep', () => {
  it('in a dry run, through the real command and wiring, lists the expired instances and terminates none', async () => {
    const result = await runCommand({
      command: 'sweep',
      inputs: {
        backend: 'aws',
        'ec2-endpoint': motoEndpoint(),
        region: 'us-east-1',
        'sweep-dry-run': 'true',
      },
      env: {},
      cwd: mkdtempSync(path.join(tmpdir(), 'mp-sweep-')),
      logger: new MemoryLogger(),
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
    expect(JSON.parse(result.outputs.terminated)).toEqual([]);
    const expired = JSON.parse(result.outputs.expired) as string[];
    expect(expired).toEqual(expect.arrayContaining([expiredId, expiredToo]));
    expect(expired).not.toContain(freshId);
    expect(expired).not.toContain(untaggedId);
    expect(result.summary).toMatch(/dry run, none terminated/);
    for (const id of [expiredId, expiredToo, freshId, untaggedId]) expect(await state(id)).toBe('running');
  });

  it('sweeps EC2 whenever it is not --local, also with no bucket set (defect 6)', async () => {
    const sweepWith = (inputs: Record<string, string>) =>
      runCommand({
        command: 'sweep',
        inputs: { 'ec2-endpoint': motoEndpoint(), region: 'us-east-1', 'sweep-dry-run': 'true', ...inputs },
        env: {},
        cwd: mkdtempSync(path.join(tmpdir(), 'mp-sweep-')),
        logger: new MemoryLogger(),
        state: new MemoryState(),
        signal: new AbortController().signal,
      });
    // no bucket, backend auto: the store would be local, but the instances are on EC2
    const auto = await sweepWith({});
    expect(JSON.parse(auto.outputs.expired)).toEqual(expect.arrayContaining([expiredId, expiredToo]));
    expect(auto.summary).toMatch(/past their deadline/);
    // only an explicit local backend sweeps local processes
    const local = await sweepWith({ backend: 'local' });
    expect(JSON.parse(local.outputs.expired)).toEqual([]);
    expect(local.text).toMatch(/on the local backend/);
  });

  it('terminates only the expired tagged instances; untagged and unexpired ones keep running', async () => {
    const result = await sweep({});
    expect(JSON.parse(result.outputs.terminated)).toEqual([expiredId, expiredToo].sort());
    expect(JSON.parse(result.outputs.expired)).toEqual([expiredId, expiredToo].sort());
    expect(await state(expiredId)).toMatch(/shutting-down|terminated/);
    expect(await state(expiredToo)).toMatch(/shutting-down|terminated/);
    expect(await state(freshId)).toBe('running');
    expect(await state(untaggedId)).toBe('running');
    expect(result.summary).toContain('terminated 2 of 3 tagged instances');
    expect(result.summary).toContain(freshId);
    expect(result.log.join('\n')).toMatch(new RegExp(`terminating ${expiredId}: past its deadline`));

    // a second sweep finds nothing left to do
    const again = await sweep({});
    expect(JSON.parse(again.outputs.terminated)).toEqual([]);
  });

  it('max-age terminates tagged instances older than it, whatever their own deadline', async () => {
    // seen from 1 hour in the future, the fresh instance is older than 30 minutes
    const kept = await sweep({ 'max-age': '2h' }, { clock: clockAt(HOUR) });
    expect(JSON.parse(kept.outputs.terminated)).toEqual([]);
    expect(await state(freshId)).toBe('running');
    const swept = await sweep({ 'max-age': '30m' }, { clock: clockAt(HOUR) });
    expect(JSON.parse(swept.outputs.terminated)).toEqual([freshId]);
    expect(await state(freshId)).toMatch(/shutting-down|terminated/);
    expect(await state(untaggedId)).toBe('running');
  });

  it('terminates what it can and then fails naming what it could not', async () => {
    const past = new Ec2Compute({ endpoint: motoEndpoint(), clock: clockAt(-10 * HOUR) });
    const a = (await past.launch(request('fail-a', 60))).id;
    const b = (await past.launch(request('fail-b', 60))).id;
    const compute = scoped(new Ec2Compute({ endpoint: motoEndpoint() }), new Set([a]));
    const err = await sweep({}, { compute }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as Error).message).toMatch(
      new RegExp(`could not terminate 1 instance.*${a}.*terminated: ${b}`),
    );
    expect(await state(a)).toBe('running');
    expect(await state(b)).toMatch(/shutting-down|terminated/);
    await new Ec2Compute({ endpoint: motoEndpoint() }).terminate(a);
  });

  it('rejects a malformed max-age', async () => {
    await expect(sweep({ 'max-age': 'a while' })).rejects.toThrow(
      /the max-age input must be a positive duration/,
    );
  });
});
