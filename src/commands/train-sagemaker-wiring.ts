import { createSageMaker, createTrainingLogs } from '../wiring-sagemaker';
import { STATE_TRAINING_JOB, stopLeftoverJob, trainOnSageMaker } from './train-sagemaker';
import type { CommandContext, CommandResult } from './types';

/** `backend: sagemaker`, or `train-engine: sagemaker` on any backend, trains on a SageMaker training job. */
export function usesSageMaker(ctx: CommandContext): boolean {
  return ctx.options.string('backend') === 'sagemaker' || ctx.options.string('train-engine') === 'sagemaker';
}

/** The SageMaker engine of `train` when the options ask for it; undefined for the instance engine. */
export function sagemakerEngine(ctx: CommandContext): (() => Promise<CommandResult>) | undefined {
  if (!usesSageMaker(ctx)) return undefined;
  return () => trainOnSageMaker(ctx, createSageMaker(ctx), createTrainingLogs(ctx));
}

/** train's post step: stop the training job a cancelled run left behind. */
export async function sagemakerCleanup(ctx: CommandContext): Promise<void> {
  if (!ctx.deps.state.get(STATE_TRAINING_JOB)) return;
  await stopLeftoverJob(ctx, createSageMaker(ctx));
}
