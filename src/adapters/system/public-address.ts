import { PipelineError } from '../../core/errors';
import type { PublicAddress } from '../../core/ports';
import { publicAddressCidr } from '../../core/ssh-ingress';

/** Where `ssh-cidr: auto` asks for the runner's public IPv4 address (plain text, one line). */
export const DEFAULT_CHECKIP_URL = 'https://checkip.amazonaws.com/';

export interface HttpPublicAddressOptions {
  /** Default DEFAULT_CHECKIP_URL; the wiring takes MODEL_PIPELINE_CHECKIP_URL (documented in the README). */
  url?: string;
  /** Whole request, connection included. */
  timeoutMs?: number;
}

/** One GET of a checkip service, bounded by a timeout and the command's abort signal. */
export class HttpPublicAddress implements PublicAddress {
  private readonly url: string;
  private readonly timeoutMs: number;

  constructor(options: HttpPublicAddressOptions = {}) {
    this.url = options.url || DEFAULT_CHECKIP_URL;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async lookup(signal?: AbortSignal): Promise<string> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let text: string;
    try {
      const r = await fetch(this.url, { signal: both, redirect: 'error', headers: { accept: 'text/plain' } });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      text = (await r.text()).slice(0, 200);
    } catch (err) {
      const why = timeout.aborted
        ? `no answer within ${Math.round(this.timeoutMs / 1000)}s`
        : signal?.aborted
          ? 'cancelled'
          : ((err as Error)?.message ?? String(err));
      throw new PipelineError(
        `ssh-cidr auto: could not learn the runner's public address from ${this.url} (${why}); set ssh-cidr to your runners' CIDR blocks instead`,
      );
    }
    try {
      return publicAddressCidr(text, this.url);
    } catch (err) {
      throw new PipelineError(`ssh-cidr auto: ${(err as Error).message}`);
    }
  }
}
