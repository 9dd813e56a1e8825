import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { FetchCiRuns } from '../../src/adapters/ci/ci-runs';
import { ec2ClientConfig, Ec2Compute } from '../../src/adapters/aws/ec2-compute';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { sweepCommand } from '../../src/commands/sweep';
import {
  formatCiRun,
  TAG_CI_ATTEMPT,
  TAG_CI_JOB,
  TAG_CI_RUN,
  type CiRunRef,
} from '../../src/core/instance-tags';
import type { CiRuns, CiRunStatus, Compute, LaunchRequest } from '../../src/core/ports';
import { buildContext } from '../../src/runner';
import { motoEndpoint } from '../helpers/aws';
import { MemoryLogger } from '../helpers/memory-logger';

// moto's instances have fake 10.x addresses: this file only uses the EC2 API, never the network

const run = randomBytes(4).toString('hex');
const real = () => new Ec2Compute({ endpoint: motoEndpoint() });

/** A CI that knows which runs have finished; records what it was asked. */
class FakeCiRuns implements CiRuns {
  readonly asked: string[] = [];
  constructor(private readonly finished: Map<string, CiRunStatus>) {}
  async status(r: CiRunRef, attempt?: string): Promise<CiRunStatus | undefined> {
    this.asked.push(`${formatCiRun(r)}#${attempt ?? ''}`);
    return (
      this.finished.get(`${formatCiRun(r)}#${attempt ?? ''}`) ?? { finished: false, detail: 'in_progress' }
    );
  }
}

function scoped(c: Ec2Compute): Compute {
  return {
    launch: (r, s) => c.launch(r, s),
    describe: (id) => c.describe(id),
    waitUntilRunning: (id, t, s) => c.waitUntilRunning(id, t, s),
    terminate: (id) => c.terminate(id),
    findByTags: (tags) => c.findByTags({ ...tags, 'owner-test': run }),
  };
}

let imageId: string;
async function launch(ciRun: string | undefined, attempt?: string, job?: string): Promise<string> {
  const req: LaunchRequest = {
    imageId,
    instanceTypes: ['t3.micro'],
    subnetIds: [],
    securityGroupIds: [],
    spot: false,
    rootVolumeGiB: 8,
    maxRuntimeSeconds: 6 * 3600,
    tags: {
      'owner-test': run,
      ...(ciRun ? { [TAG_CI_RUN]: ciRun } : {}),
      ...(attempt ? { [TAG_CI_ATTEMPT]: attempt } : {}),
      ...(job ? { [TAG_CI_JOB]: job } : {}),
    },
  };
  return (await real().launch(req)).id;
}

async function sweep(inputs: Record<string, string>, ciRuns: CiRuns, env: Record<string, string> = {}) {
  const logger = new MemoryLogger();
  const ctx = await buildContext(sweepCommand, {
    command: 'sweep',
    inputs: { backend: 'aws', 'ec2-endpoint': motoEndpoint(), region: 'us-east-1', ...inputs },
    env,
    cwd: mkdtempSync(path.join(tmpdir(), 'mp-sweep-owner-')),
    logger,
    state: new MemoryState(),
    signal: new AbortController().signal,
  });
  ctx.deps.compute = () => scoped(real());
  ctx.deps.ciRuns = () => ciRuns;
  return { ...(await sweepCommand.run(ctx)), log: logger.lines };
}

const state = async (id: string) => (await real().describe(id))?.state ?? 'gone';
const gone = /shutting-down|terminated/;

beforeAll(async () => {
  const c = new EC2Client(ec2ClientConfig({ endpoint: motoEndpoint() }));
  imageId = (await c.send(new DescribeImagesCommand({}))).Images!.find((i) => i.RootDeviceName)!.ImageId!;
});

describe('sweep ends instances whose CI run has finished', () => {
  it('asks the CI about each run (attempt) once and terminates only the finished runs’ instances', async () => {
    const finishedGh = await launch('github:acme/search:100', '1');
    const finishedGhToo = await launch('github:acme/search:100', '1');
    const rerun = await launch('github:acme/search:100', '2'); // the run's re-run attempt is still going
    const runningGh = await launch('github:acme/search:101', '1');
    const finishedCc = await launch('circleci:5b3e0f5e-1111-2222-3333-444455556666');
    const runningCc = await launch('circleci:7c3e0f5e-1111-2222-3333-444455556666');
    const noRun = await launch(undefined);
    const ci = new FakeCiRuns(
      new Map([
        ['github:acme/search:100#1', { finished: true, detail: 'completed (cancelled)' }],
        ['circleci:5b3e0f5e-1111-2222-3333-444455556666#', { finished: true, detail: 'failed' }],
      ]),
    );
    const r = await sweep({}, ci);
    expect(JSON.parse(r.outputs.terminated)).toEqual([finishedGh, finishedGhToo, finishedCc].sort());
    for (const id of [finishedGh, finishedGhToo, finishedCc]) expect(await state(id)).toMatch(gone);
    for (const id of [rerun, runningGh, runningCc, noRun]) expect(await state(id)).toBe('running');
    expect(ci.asked.filter((a) => a === 'github:acme/search:100#1')).toHaveLength(1);
    expect(r.log.join('\n')).toMatch(
      new RegExp(
        `terminating ${finishedGh}: its CI run github:acme/search:100 has finished: completed \\(cancelled\\)`,
      ),
    );

    // run-id: everything of that run, whatever the CI says and whatever the deadline
    const byRun = await sweep({ 'run-id': '100' }, new FakeCiRuns(new Map()));
    expect(JSON.parse(byRun.outputs.terminated)).toEqual([rerun]);
    expect(await state(runningGh)).toBe('running');
    for (const id of [runningGh, runningCc, noRun]) await real().terminate(id);
  });
});

describe('sweep own-job: the cleanup step after train in the same CircleCI job', () => {
  it('terminates the instances of this job only, while its workflow still runs', async () => {
    const wf = '9d3e0f5e-1111-2222-3333-444455556666';
    const mine = await launch(`circleci:${wf}`, '55', 'train');
    const sibling = await launch(`circleci:${wf}`, '56', 'train');
    const env = { CIRCLECI: 'true', CIRCLE_WORKFLOW_ID: wf, CIRCLE_BUILD_NUM: '55', CIRCLE_JOB: 'train' };
    const without = await sweep({}, new FakeCiRuns(new Map()), env);
    expect(JSON.parse(without.outputs.terminated)).toEqual([]);
    const r = await sweep({ 'own-job': 'true' }, new FakeCiRuns(new Map()), env);
    expect(JSON.parse(r.outputs.terminated)).toEqual([mine]);
    expect(await state(mine)).toMatch(gone);
    expect(await state(sibling)).toBe('running');
    await real().terminate(sibling);
  });
});

describe('FetchCiRuns asks the GitHub and CircleCI APIs', () => {
  let server: http.Server;
  let base = '';
  const seen: { url: string; auth?: string; circle?: string }[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({
        url: req.url ?? '',
        auth: req.headers.authorization,
        circle: req.headers['circle-token'] as string | undefined,
      });
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.url === '/repos/acme/search/actions/runs/100/attempts/2')
        return send(200, { status: 'completed', conclusion: 'cancelled' });
      if (req.url === '/repos/acme/search/actions/runs/101') return send(200, { status: 'in_progress' });
      if (req.url === '/api/v2/workflow/wf-done') return send(200, { status: 'canceled' });
      if (req.url === '/api/v2/workflow/wf-live') return send(200, { status: 'on_hold' });
      send(404, { message: 'Not Found' });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('reads run attempts and workflows with the tokens, and answers undefined when it cannot know', async () => {
    const log: string[] = [];
    const ci = new FetchCiRuns({
      githubToken: 'gh-secret',
      githubApiUrl: base,
      circleToken: 'cc-secret',
      circleApiUrl: base,
      log: (m) => log.push(m),
    });
    const gh = (runId: string): CiRunRef => ({ provider: 'github', repository: 'acme/search', runId });
    expect(await ci.status(gh('100'), '2')).toEqual({ finished: true, detail: 'completed (cancelled)' });
    expect(await ci.status(gh('101'))).toEqual({ finished: false, detail: 'in_progress' });
    expect(await ci.status({ provider: 'circleci', runId: 'wf-done' })).toEqual({
      finished: true,
      detail: 'canceled',
    });
    expect(await ci.status({ provider: 'circleci', runId: 'wf-live' })).toEqual({
      finished: false,
      detail: 'on_hold',
    });
    expect(await ci.status(gh('999'))).toBeUndefined();
    expect(seen[0].auth).toBe('Bearer gh-secret');
    expect(seen[2].circle).toBe('cc-secret');
    expect(log.join('\n')).toMatch(/answered 404/);
    expect(log.join('\n')).not.toMatch(/secret/);

    const noToken = new FetchCiRuns({ githubApiUrl: base, circleApiUrl: base, log: (m) => log.push(m) });
    expect(await noToken.status(gh('100'), '2')).toBeUndefined();
    expect(log.join('\n')).toMatch(/no github-token/);
  });
});
