import type { CiRunRef } from '../../core/instance-tags';
import type { CiRuns, CiRunStatus } from '../../core/ports';

export interface FetchCiRunsOptions {
  /** Token with actions:read on the repository (the job's GITHUB_TOKEN will do). */
  githubToken?: string;
  /** The github-api-url option (GITHUB_API_URL on GitHub Enterprise). */
  githubApiUrl: string;
  /** A CircleCI personal or project API token. */
  circleToken?: string;
  /** The circleci-api-url option. */
  circleApiUrl: string;
  /** For tests and proxies; default the global fetch. */
  fetch?: typeof fetch;
  /** Why a run could not be asked about (once per reason); never the token. */
  log?: (message: string) => void;
  timeoutMs?: number;
}

/** CircleCI workflow states that will not change any more. */
const CIRCLE_DONE = new Set(['success', 'not_run', 'failed', 'error', 'canceled', 'unauthorized']);

/**
 * The CI APIs through fetch: GitHub's workflow run (or run attempt) and CircleCI's workflow. Any failure
 * (no token, 404, network) answers undefined: the sweep then keeps the instance, never guesses.
 */
export class FetchCiRuns implements CiRuns {
  private readonly fetch: typeof fetch;
  private readonly said = new Set<string>();

  constructor(private readonly o: FetchCiRunsOptions) {
    this.fetch = o.fetch ?? fetch;
  }

  private note(message: string): void {
    if (this.said.has(message)) return;
    this.said.add(message);
    this.o.log?.(message);
  }

  async status(run: CiRunRef, attempt?: string): Promise<CiRunStatus | undefined> {
    try {
      return run.provider === 'github' ? await this.github(run, attempt) : await this.circle(run);
    } catch (err) {
      this.note(`cannot ask ${run.provider} about run ${run.runId}: ${(err as Error).message}`);
      return undefined;
    }
  }

  private async getJson(url: string, headers: Record<string, string>): Promise<Record<string, unknown>> {
    const r = await this.fetch(url, {
      headers: { accept: 'application/json', ...headers },
      signal: AbortSignal.timeout(this.o.timeoutMs ?? 15_000),
    });
    if (!r.ok) throw new Error(`${url} answered ${r.status}`);
    return (await r.json()) as Record<string, unknown>;
  }

  private async github(run: CiRunRef, attempt?: string): Promise<CiRunStatus | undefined> {
    if (!this.o.githubToken) {
      this.note('no github-token: instances of GitHub runs are swept only by their deadline');
      return undefined;
    }
    if (!run.repository) return undefined;
    const base = this.o.githubApiUrl.replace(/\/+$/, '');
    // the attempt's own status: a re-run makes the run active again, but the old attempt stays finished
    const url =
      `${base}/repos/${run.repository}/actions/runs/${encodeURIComponent(run.runId)}` +
      (attempt && /^\d+$/.test(attempt) ? `/attempts/${attempt}` : '');
    const body = await this.getJson(url, {
      authorization: `Bearer ${this.o.githubToken}`,
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
    });
    const status = String(body.status ?? 'unknown');
    const conclusion = body.conclusion ? ` (${String(body.conclusion)})` : '';
    return { finished: status === 'completed', detail: `${status}${conclusion}` };
  }

  private async circle(run: CiRunRef): Promise<CiRunStatus | undefined> {
    if (!this.o.circleToken) {
      this.note('no circleci-token: instances of CircleCI workflows are swept only by their deadline');
      return undefined;
    }
    const base = this.o.circleApiUrl.replace(/\/+$/, '');
    const body = await this.getJson(`${base}/api/v2/workflow/${encodeURIComponent(run.runId)}`, {
      'circle-token': this.o.circleToken,
    });
    const status = String(body.status ?? 'unknown');
    return { finished: CIRCLE_DONE.has(status), detail: status };
  }
}
