import { PipelineError, UserError } from '../../core/errors';

interface AwsLikeError {
  name?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Turns SDK failures users will meet into messages that say what to do; anything else passes through. */
export function describeAwsError(err: unknown, what: string): Error {
  const e = err as AwsLikeError;
  const name = e?.name ?? e?.Code ?? '';
  const status = e?.$metadata?.httpStatusCode;
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(e?.message ?? '')) {
    return new UserError(
      `${what}: no AWS credentials found. Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use ` +
        `aws-actions/configure-aws-credentials (GitHub) / an OIDC role step (CircleCI).`,
    );
  }
  if (name === 'NoSuchBucket')
    return new UserError(`${what}: the bucket does not exist (check the bucket setting)`);
  if (name === 'AccessDenied' || name === 'UnauthorizedOperation' || status === 403) {
    return new PipelineError(
      `${what}: access denied by AWS (${e.message ?? name}); see docs/iam-policy.json`,
    );
  }
  if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'AuthFailure') {
    return new UserError(`${what}: AWS rejected the credentials (${name})`);
  }
  if (err instanceof Error) {
    return new PipelineError(`${what}: ${err.message || name}`);
  }
  return new PipelineError(`${what}: ${String(err)}`);
}
