import { UserError } from './errors';

/** Tags the tool puts on everything it launches; the sweep and the IAM policy key on PIPELINE_TAG. */
export const PIPELINE_TAG = 'model-pipeline';
export const TAG_MAX_RUNTIME = 'model-pipeline:max-runtime-seconds';
export const TAG_EXPIRES_AT = 'model-pipeline:expires-at';
export const TAG_MODEL_PREFIX = 'model-pipeline:model-prefix';
export const TAG_REPO = 'model-pipeline:repo';
export const TAG_RUN_URL = 'model-pipeline:run-url';
/** The CI run that owns the instance, `github:<owner>/<repo>:<run id>` or `circleci:<workflow id>`. */
export const TAG_CI_RUN = 'model-pipeline:ci-run';
export const TAG_CI_ATTEMPT = 'model-pipeline:ci-attempt';
export const TAG_CI_JOB = 'model-pipeline:ci-job';
/** Random per launch, written before the launch request: the instance is found by it if the answer is lost. */
export const TAG_LAUNCH_TOKEN = 'model-pipeline:launch-token';

const KEY_MAX = 128;
const VALUE_MAX = 256;

export interface TrainTagInput {
  modelPrefix: string;
  repo?: string;
  runUrl?: string;
  /** The Name tag; default derived from the model prefix. */
  name?: string;
  /** More tags from the user; they cannot override the tool's own. */
  extra?: Record<string, string>;
  /** The CI run, attempt and job that launch the instance (sweep ends it once the run has finished). */
  ci?: { run?: CiRunRef; attempt?: string; job?: string };
  launchToken?: string;
}

/** A CI run as the sweep asks its CI about it. */
export interface CiRunRef {
  provider: 'github' | 'circleci';
  /** owner/name on GitHub. */
  repository?: string;
  /** GitHub workflow run id; CircleCI workflow id. */
  runId: string;
}

export function formatCiRun(r: CiRunRef): string {
  return r.provider === 'github' ? `github:${r.repository ?? ''}:${r.runId}` : `circleci:${r.runId}`;
}

/** The inverse of formatCiRun; undefined for anything else (older instances, other tools). */
export function parseCiRun(tag: string | undefined): CiRunRef | undefined {
  if (!tag) return undefined;
  const gh = /^github:([^/:\s]+\/[^/:\s]+):([0-9]+)$/.exec(tag);
  if (gh) return { provider: 'github', repository: gh[1], runId: gh[2] };
  const cc = /^circleci:([0-9a-f-]{8,})$/i.exec(tag);
  if (cc) return { provider: 'circleci', runId: cc[1] };
  return undefined;
}

/** Descriptive tags of a training instance (the marker tags are added by markerTags at launch). */
export function trainInstanceTags(input: TrainTagInput): Record<string, string> {
  const prefix = input.modelPrefix.replace(/\/+$/, '');
  const tags: Record<string, string> = { ...(input.extra ?? {}) };
  tags.Name = input.name ?? `model-pipeline ${prefix}`;
  tags[TAG_MODEL_PREFIX] = prefix;
  if (input.repo) tags[TAG_REPO] = input.repo;
  if (input.runUrl) tags[TAG_RUN_URL] = input.runUrl;
  if (input.ci?.run) tags[TAG_CI_RUN] = formatCiRun(input.ci.run);
  if (input.ci?.attempt) tags[TAG_CI_ATTEMPT] = input.ci.attempt;
  if (input.ci?.job) tags[TAG_CI_JOB] = input.ci.job;
  if (input.launchToken) tags[TAG_LAUNCH_TOKEN] = input.launchToken;
  return tags;
}

/** The tags the sweep relies on: the pipeline marker, the max runtime and the resulting deadline. */
export function markerTags(maxRuntimeSeconds: number, launchedAt: Date): Record<string, string> {
  return {
    [PIPELINE_TAG]: 'true',
    [TAG_MAX_RUNTIME]: String(maxRuntimeSeconds),
    [TAG_EXPIRES_AT]: new Date(launchedAt.getTime() + maxRuntimeSeconds * 1000).toISOString(),
  };
}

/** EC2 limits (key 128, value 256 characters; no `aws:` keys): long values (URLs) are cut, not refused. */
export function normalizeTags(tags: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(tags)) {
    if (value === undefined) continue;
    if (key === '' || key.length > KEY_MAX)
      throw new UserError(`tag key "${key.slice(0, 40)}…" must be 1 to ${KEY_MAX} characters`);
    if (key.toLowerCase().startsWith('aws:')) throw new UserError(`tag key "${key}" is reserved by AWS`);
    out[key] = value.length > VALUE_MAX ? value.slice(0, VALUE_MAX) : value;
  }
  return out;
}

export interface SweepCandidate {
  id: string;
  state: string;
  launchedAt?: Date;
  tags: Record<string, string>;
}

export interface SweepVerdict {
  expired: boolean;
  /** The earliest deadline known for the instance. */
  deadline?: Date;
  reason: string;
}

const GONE_STATES = new Set(['shutting-down', 'terminated']);

/**
 * An instance is expired when the earliest of its deadlines has passed: launch + its max-runtime tag, its
 * expires-at tag, launch + max-age. The earliest, because this is the safety net for when the others failed.
 */
export function sweepVerdict(c: SweepCandidate, now: Date, maxAgeSeconds?: number): SweepVerdict {
  if (GONE_STATES.has(c.state)) return { expired: false, reason: `already ${c.state}` };
  const deadlines: [Date, string][] = [];
  const maxRuntime = Number(c.tags[TAG_MAX_RUNTIME]);
  if (c.launchedAt && Number.isFinite(maxRuntime) && maxRuntime > 0)
    deadlines.push([new Date(c.launchedAt.getTime() + maxRuntime * 1000), `max runtime ${maxRuntime}s`]);
  const expiresAt = c.tags[TAG_EXPIRES_AT] ? new Date(c.tags[TAG_EXPIRES_AT]) : undefined;
  if (expiresAt && !Number.isNaN(expiresAt.getTime())) deadlines.push([expiresAt, 'expires-at tag']);
  if (c.launchedAt && maxAgeSeconds !== undefined)
    deadlines.push([new Date(c.launchedAt.getTime() + maxAgeSeconds * 1000), `max-age ${maxAgeSeconds}s`]);
  if (deadlines.length === 0)
    return { expired: false, reason: 'no max-runtime tag, expires-at tag or max-age: left alone' };
  deadlines.sort((a, b) => a[0].getTime() - b[0].getTime());
  const [deadline, why] = deadlines[0];
  const expired = deadline.getTime() <= now.getTime();
  return {
    expired,
    deadline,
    reason: expired
      ? `past its deadline ${deadline.toISOString()} (${why})`
      : `runs until ${deadline.toISOString()} (${why})`,
  };
}
