/**
 * Two kinds of failure a user sees. Both carry a message meant for people, never a stack trace.
 * UserError: the input is wrong (exit code 2). PipelineError: the input was fine, the work failed (exit 1).
 */
export class UserError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

export class PipelineError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'PipelineError';
  }
}

/** A conditional write lost: the object exists (If-None-Match) or changed (If-Match). */
export class PreconditionFailedError extends Error {
  constructor(readonly key: string) {
    super(`conditional write of ${key} failed: the object exists or changed`);
    this.name = 'PreconditionFailedError';
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof UserError) return 2;
  return 1;
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
