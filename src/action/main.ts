import * as core from '@actions/core';
import { messageOf } from '../core/errors';
import { allOptions } from '../commands';
import { tuneHeap } from '../adapters/system/heap';
import { runCommand } from '../runner';
import { readInputs, secretValues } from './inputs';
import { actionLogger, actionState } from './logger';

/** GitHub Action entry: read inputs, dispatch, set outputs; one catch turns any failure into setFailed. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  tuneHeap();
  const controller = new AbortController();
  const onSignal = (sig: string) => () => controller.abort(new Error(`received ${sig}`));
  process.once('SIGINT', onSignal('SIGINT'));
  process.once('SIGTERM', onSignal('SIGTERM'));
  // first of all: an error from here on cannot print a secret input
  for (const secret of secretValues(allOptions(), env)) core.setSecret(secret);
  try {
    const command = env.INPUT_COMMAND ?? '';
    core.saveState('command', command.trim());
    const result = await runCommand({
      command,
      inputs: readInputs(allOptions(), env),
      env,
      cwd: process.cwd(),
      logger: actionLogger,
      state: actionState,
      signal: controller.signal,
    });
    for (const [name, value] of Object.entries(result.outputs)) core.setOutput(name, value);
    if (result.text) core.info(result.text);
    if (result.summary && env.GITHUB_STEP_SUMMARY) {
      await core.summary.addRaw(result.summary, true).write();
    }
  } catch (err) {
    core.setFailed(messageOf(err));
  }
}
