import { AbortMultipartUploadCommand, DeleteObjectsCommand } from '@aws-sdk/client-s3';

/** How long an AWS call may wait: to connect, and for the next byte of a response (not the whole body). */
export interface AwsTimeouts {
  connectionMs: number;
  requestMs: number;
  /** Tries per call, the first included (adaptive retry mode: backs off and rate-limits on throttling). */
  maxAttempts: number;
}

export const DEFAULT_AWS_TIMEOUTS: AwsTimeouts = { connectionMs: 5_000, requestMs: 30_000, maxAttempts: 4 };

/** The part of every S3 and EC2 client's configuration that bounds its calls. */
export function boundedClientConfig(t: Partial<AwsTimeouts> = {}): {
  requestHandler: { connectionTimeout: number; requestTimeout: number; throwOnRequestTimeout: boolean };
  retryMode: string;
  maxAttempts: number;
} {
  const o = { ...DEFAULT_AWS_TIMEOUTS, ...t };
  return {
    requestHandler: {
      connectionTimeout: o.connectionMs,
      requestTimeout: o.requestMs,
      throwOnRequestTimeout: true,
    },
    retryMode: 'adaptive',
    maxAttempts: o.maxAttempts,
  };
}

interface Sendable {
  send(command: unknown, ...rest: unknown[]): Promise<unknown>;
}

/** Calls that clean up after a stopped command: they run to their own timeouts, never cut by the abort. */
const cleanup: (abstract new (...args: never[]) => unknown)[] = [
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
];

/** Cleanup calls of other services (EC2 terminate, delete key pair) register here from their adapters. */
export function registerCleanupCommand(command: abstract new (...args: never[]) => unknown): void {
  if (!cleanup.includes(command)) cleanup.push(command);
}

/**
 * Every call of the client gets the command's abort signal (SIGINT/SIGTERM), unless it passes its own or
 * cleans up: a stopped command's pending requests end at once instead of after their retries.
 */
export function bindAbortSignal<C extends Sendable>(client: C, signal: AbortSignal | undefined): C {
  if (!signal) return client;
  const send = client.send.bind(client) as (command: unknown, ...rest: unknown[]) => Promise<unknown>;
  client.send = ((command: unknown, ...rest: unknown[]) => {
    const [options] = rest;
    if (typeof options === 'function' || cleanup.some((c) => command instanceof c))
      return send(command, ...rest);
    const given = (options ?? {}) as { abortSignal?: AbortSignal };
    return send(command, { ...given, abortSignal: given.abortSignal ?? signal }, ...rest.slice(1));
  }) as C['send'];
  return client;
}
