import { ciRunLabel, readCiContext } from '../../src/core/ci-env';

describe('readCiContext', () => {
  it('reads a GitHub push run', () => {
    expect(
      readCiContext({
        GITHUB_ACTIONS: 'true',
        GITHUB_SERVER_URL: 'https://ghe.example.com',
        GITHUB_REPOSITORY: 'acme/search',
        GITHUB_RUN_ID: '12345',
        GITHUB_SHA: 'abc1234def',
        GITHUB_REF_NAME: 'main',
        GITHUB_HEAD_REF: '',
        GITHUB_BASE_REF: '',
        GITHUB_ACTOR: 'octocat',
      }),
    ).toEqual({
      provider: 'github',
      sha: 'abc1234def',
      branch: 'main',
      repository: 'acme/search',
      runUrl: 'https://ghe.example.com/acme/search/actions/runs/12345',
      actor: 'octocat',
      baseBranch: undefined,
      runId: '12345',
    });
  });

  it('reads a GitHub pull request: head branch and base branch', () => {
    const c = readCiContext({
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: 'acme/search',
      GITHUB_RUN_ID: '7',
      GITHUB_REF_NAME: '42/merge',
      GITHUB_HEAD_REF: 'feature/bump',
      GITHUB_BASE_REF: 'main',
    });
    expect(c.branch).toBe('feature/bump');
    expect(c.baseBranch).toBe('main');
    expect(c.runUrl).toBe('https://github.com/acme/search/actions/runs/7');
  });

  it('has no run URL without a repository or run id', () => {
    expect(readCiContext({ GITHUB_ACTIONS: 'true', GITHUB_RUN_ID: '1' }).runUrl).toBeUndefined();
    expect(readCiContext({ GITHUB_ACTIONS: 'true', GITHUB_REPOSITORY: 'a/b' }).runUrl).toBeUndefined();
  });

  it('reads a CircleCI run', () => {
    expect(
      readCiContext({
        CIRCLECI: 'true',
        CIRCLE_SHA1: 'def5678',
        CIRCLE_BRANCH: 'feature',
        CIRCLE_PROJECT_USERNAME: 'acme',
        CIRCLE_PROJECT_REPONAME: 'search',
        CIRCLE_BUILD_URL: 'https://circleci.com/gh/acme/search/99',
        CIRCLE_USERNAME: 'dev',
      }),
    ).toEqual({
      provider: 'circleci',
      sha: 'def5678',
      branch: 'feature',
      repository: 'acme/search',
      runUrl: 'https://circleci.com/gh/acme/search/99',
      actor: 'dev',
    });
  });

  it('is local elsewhere, and ignores GITHUB_ACTIONS other than "true"', () => {
    expect(readCiContext({ USER: 'me', GITHUB_SHA: 'abc1234' })).toEqual({ provider: 'local', actor: 'me' });
    expect(readCiContext({ GITHUB_ACTIONS: 'false' }).provider).toBe('local');
  });

  it('names the job of the run: id, attempt and job, for leases and instance tags', () => {
    const gh = readCiContext({
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: 'acme/search',
      GITHUB_RUN_ID: '12345',
      GITHUB_RUN_ATTEMPT: '2',
      GITHUB_JOB: 'train',
    });
    expect([gh.runId, gh.runAttempt, gh.job]).toEqual(['12345', '2', 'train']);
    expect(ciRunLabel(gh)).toBe('github:acme/search/12345/2/train');
    const cc = readCiContext({
      CIRCLECI: 'true',
      CIRCLE_WORKFLOW_ID: 'wf-1',
      CIRCLE_BUILD_NUM: '99',
      CIRCLE_JOB: 'train',
    });
    expect(ciRunLabel(cc)).toBe('circleci:wf-1/99/train');
    expect(ciRunLabel(readCiContext({}))).toBeUndefined();
  });
});
