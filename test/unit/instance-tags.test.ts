import { UserError } from '../../src/core/errors';
import {
  formatCiRun,
  parseCiRun,
  TAG_CI_ATTEMPT,
  TAG_CI_JOB,
  TAG_CI_RUN,
  TAG_LAUNCH_TOKEN,
  markerTags,
  normalizeTags,
  PIPELINE_TAG,
  sweepVerdict,
  TAG_EXPIRES_AT,
  TAG_MAX_RUNTIME,
  trainInstanceTags,
  type SweepCandidate,
} from '../../src/core/instance-tags';

describe('trainInstanceTags / markerTags', () => {
  it('describes the run and cannot be overridden by extra tags', () => {
    const tags = trainInstanceTags({
      modelPrefix: 'models/search/1.2.0-abc1234/',
      repo: 'acme/search',
      runUrl: 'https://github.com/acme/search/actions/runs/1',
      extra: { team: 'ml', 'model-pipeline:model-prefix': 'spoofed' },
    });
    expect(tags).toEqual({
      team: 'ml',
      Name: 'model-pipeline models/search/1.2.0-abc1234',
      'model-pipeline:model-prefix': 'models/search/1.2.0-abc1234',
      'model-pipeline:repo': 'acme/search',
      'model-pipeline:run-url': 'https://github.com/acme/search/actions/runs/1',
    });
  });

  it('marks the instance with its deadline', () => {
    expect(markerTags(3600, new Date('2024-05-01T10:00:00Z'))).toEqual({
      [PIPELINE_TAG]: 'true',
      [TAG_MAX_RUNTIME]: '3600',
      [TAG_EXPIRES_AT]: '2024-05-01T11:00:00.000Z',
    });
  });
});

describe('normalizeTags', () => {
  it('cuts long values to 256 characters and drops undefined ones', () => {
    const out = normalizeTags({ url: 'x'.repeat(300), gone: undefined, empty: '' });
    expect(out).toEqual({ url: 'x'.repeat(256), empty: '' });
  });
  it.each([[''], ['aws:cloudformation'], ['k'.repeat(129)]])('refuses key %j', (key) => {
    expect(() => normalizeTags({ [key]: 'v' })).toThrow(UserError);
  });
});

const NOW = new Date('2024-05-01T12:00:00Z');
const hoursAgo = (h: number): Date => new Date(NOW.getTime() - h * 3600_000);
const c = (
  launchedHoursAgo: number | undefined,
  tags: Record<string, string>,
  state = 'running',
): SweepCandidate => ({
  id: 'i-1',
  state,
  launchedAt: launchedHoursAgo === undefined ? undefined : hoursAgo(launchedHoursAgo),
  tags,
});

describe('sweepVerdict', () => {
  it.each([
    ['max runtime passed', c(7, { [TAG_MAX_RUNTIME]: '21600' }), undefined, true],
    ['max runtime not yet passed', c(5, { [TAG_MAX_RUNTIME]: '21600' }), undefined, false],
    ['exactly at the deadline', c(6, { [TAG_MAX_RUNTIME]: '21600' }), undefined, true],
    [
      'expires-at passed, runtime tag not',
      c(1, { [TAG_MAX_RUNTIME]: '21600', [TAG_EXPIRES_AT]: hoursAgo(0.5).toISOString() }),
      undefined,
      true,
    ],
    ['max-age passed, runtime tag not', c(3, { [TAG_MAX_RUNTIME]: '21600' }), 2 * 3600, true],
    ['max-age not passed', c(1, { [TAG_MAX_RUNTIME]: '21600' }), 2 * 3600, false],
    ['no deadline at all', c(100, {}), undefined, false],
    ['garbage tags', c(100, { [TAG_MAX_RUNTIME]: 'six hours', [TAG_EXPIRES_AT]: 'soon' }), undefined, false],
    ['garbage tags with max-age', c(100, { [TAG_MAX_RUNTIME]: 'x' }), 3600, true],
    [
      'no launch time, expired tag',
      c(undefined, { [TAG_EXPIRES_AT]: hoursAgo(1).toISOString() }),
      undefined,
      true,
    ],
    ['already shutting down', c(10, { [TAG_MAX_RUNTIME]: '60' }, 'shutting-down'), undefined, false],
    ['stopped and old', c(10, { [TAG_MAX_RUNTIME]: '60' }, 'stopped'), undefined, true],
  ])('%s', (_name, cand, maxAge, expired) => {
    const v = sweepVerdict(cand, NOW, maxAge);
    expect(v.expired).toBe(expired);
    expect(v.reason).not.toBe('');
  });

  it('names the earliest deadline', () => {
    const v = sweepVerdict(
      c(3, { [TAG_MAX_RUNTIME]: '7200', [TAG_EXPIRES_AT]: hoursAgo(0).toISOString() }),
      NOW,
    );
    expect(v.deadline).toEqual(hoursAgo(1));
    expect(v.reason).toMatch(/max runtime 7200s/);
  });
});

describe('CI run tags', () => {
  it('tag the CI run, attempt, job and launch token, and read the run back', () => {
    const tags = trainInstanceTags({
      modelPrefix: 'search/1.0.0-abc1234/',
      ci: {
        run: { provider: 'github', repository: 'acme/search', runId: '12345' },
        attempt: '2',
        job: 'train',
      },
      launchToken: 'tok',
    });
    expect(tags).toMatchObject({
      [TAG_CI_RUN]: 'github:acme/search:12345',
      [TAG_CI_ATTEMPT]: '2',
      [TAG_CI_JOB]: 'train',
      [TAG_LAUNCH_TOKEN]: 'tok',
    });
    expect(parseCiRun(tags[TAG_CI_RUN])).toEqual({
      provider: 'github',
      repository: 'acme/search',
      runId: '12345',
    });
    const cc = { provider: 'circleci' as const, runId: '5b3e0f5e-1111-2222-3333-444455556666' };
    expect(parseCiRun(formatCiRun(cc))).toEqual(cc);
    for (const bad of [undefined, '', 'github:acme:1', 'github:acme/search:x', 'gitlab:1', 'circleci:zz'])
      expect(parseCiRun(bad)).toBeUndefined();
  });
});
