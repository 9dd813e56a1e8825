import * as core from '@actions/core';
import { messageOf } from '../core/errors';
import { allOptions } from '../commands';
import { buildContext, findCommand } from '../runner';
import { readInputs } from './inputs';
import { actionLogger, actionState } from './logger';

/**
 * The action's post step: runs even when the job failed or was cancelled, and hands the saved state to the
 * command's cleanup (e.g. terminating a training instance). A cleanup failure is an error, not silence.
 */
export async function post(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    const name = core.getState('command');
    if (!name) return;
    const cmd = findCommand(name);
    if (!cmd.cleanup) return;
    const ctx = await buildContext(cmd, {
      command: name,
      inputs: readInputs(allOptions(), env),
      env,
      cwd: process.cwd(),
      logger: actionLogger,
      state: actionState,
      signal: new AbortController().signal,
    });
    await cmd.cleanup(ctx);
  } catch (err) {
    core.setFailed(`cleanup failed: ${messageOf(err)}`);
  }
}
