import { LocalSageMaker } from './adapters/local/local-sagemaker';
import type { CommandContext } from './commands/types';
import type { SageMaker } from './core/sagemaker';
import type { TrainingLogs } from './core/training-logs';
import { backendOf } from './wiring';

/* eslint-disable @typescript-eslint/no-require-imports */
// loaded on first use: only the SageMaker engine pays for its client
const sagemakerModule = (): typeof import('./adapters/aws/sagemaker') => require('./adapters/aws/sagemaker');
const logsModule = (): typeof import('./adapters/aws/cloudwatch-logs') =>
  require('./adapters/aws/cloudwatch-logs');
/* eslint-enable @typescript-eslint/no-require-imports */

/** SageMaker on AWS, or the local run of its training contract on the local backend. */
export function createSageMaker(ctx: CommandContext): SageMaker {
  const o = ctx.options;
  if (backendOf(o) === 'local')
    return new LocalSageMaker(ctx.deps.store(), { onOutput: (line) => ctx.deps.logger.info(line) });
  return new (sagemakerModule().AwsSageMaker)({
    region: o.string('region'),
    endpoint: o.string('sagemaker-endpoint-url') || undefined,
    signal: ctx.signal,
  });
}

/** The training job's CloudWatch log; none on the local backend (the local run prints its output itself). */
export function createTrainingLogs(ctx: CommandContext): TrainingLogs | undefined {
  const o = ctx.options;
  if (backendOf(o) === 'local' || !o.bool('sagemaker-logs')) return undefined;
  return new (logsModule().AwsTrainingLogs)({
    region: o.string('region'),
    endpoint: o.string('logs-endpoint-url') || undefined,
    signal: ctx.signal,
  });
}
