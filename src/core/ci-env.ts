import type { CiRunRef } from './instance-tags';

/** What the CI system tells us about the run, read from its environment variables. */
export interface CiContext {
  provider: 'github' | 'circleci' | 'local';
  sha?: string;
  branch?: string;
  repository?: string;
  runUrl?: string;
  actor?: string;
  defaultBranch?: string;
  /** Base branch of a pull request, when the run is for one. */
  baseBranch?: string;
  /** The CI run that owns what this job launches: GitHub workflow run id, CircleCI workflow id. */
  runId?: string;
  /** GitHub run attempt (re-runs); CircleCI build number. */
  runAttempt?: string;
  /** The job's name in the workflow. */
  job?: string;
}

/**
 * One string naming this job of this run, unique across re-runs: `github:<repo>/<run>/<attempt>/<job>`,
 * `circleci:<workflow>/<build>/<job>`; undefined outside CI.
 */
export function ciRunLabel(ci: CiContext): string | undefined {
  if (!ci.runId) return undefined;
  const parts = [ci.provider === 'github' ? ci.repository : undefined, ci.runId, ci.runAttempt, ci.job];
  return `${ci.provider}:${parts.filter((p) => p).join('/')}`;
}

/** The CI run this job belongs to, as instance tags name it; undefined outside CI. */
export function ciRunOf(ci: CiContext): CiRunRef | undefined {
  if (!ci.runId) return undefined;
  if (ci.provider === 'github') return { provider: 'github', repository: ci.repository, runId: ci.runId };
  if (ci.provider === 'circleci') return { provider: 'circleci', runId: ci.runId };
  return undefined;
}

export function readCiContext(env: Record<string, string | undefined>): CiContext {
  if (env.GITHUB_ACTIONS === 'true') {
    const server = env.GITHUB_SERVER_URL ?? 'https://github.com';
    const runUrl =
      env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID
        ? `${server}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
        : undefined;
    return {
      provider: 'github',
      sha: env.GITHUB_SHA,
      branch: env.GITHUB_HEAD_REF || env.GITHUB_REF_NAME,
      repository: env.GITHUB_REPOSITORY,
      runUrl,
      actor: env.GITHUB_ACTOR,
      baseBranch: env.GITHUB_BASE_REF || undefined,
      runId: env.GITHUB_RUN_ID || undefined,
      runAttempt: env.GITHUB_RUN_ATTEMPT || undefined,
      job: env.GITHUB_JOB || undefined,
    };
  }
  if (env.CIRCLECI === 'true') {
    const repository =
      env.CIRCLE_PROJECT_USERNAME && env.CIRCLE_PROJECT_REPONAME
        ? `${env.CIRCLE_PROJECT_USERNAME}/${env.CIRCLE_PROJECT_REPONAME}`
        : undefined;
    return {
      provider: 'circleci',
      sha: env.CIRCLE_SHA1,
      branch: env.CIRCLE_BRANCH,
      repository,
      runUrl: env.CIRCLE_BUILD_URL,
      actor: env.CIRCLE_USERNAME,
      runId: env.CIRCLE_WORKFLOW_ID || undefined,
      runAttempt: env.CIRCLE_BUILD_NUM || undefined,
      job: env.CIRCLE_JOB || undefined,
    };
  }
  return { provider: 'local', actor: env.USER };
}
