import { tuneHeap } from '../adapters/system/heap';
import { cli } from './main';

/** The CLI as a process: the first SIGINT/SIGTERM stops the command so it cleans up, a second one quits. */
export function runCliProcess(): void {
  tuneHeap();
  const controller = new AbortController();
  let interrupted = 0;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      interrupted++;
      if (interrupted > 1) process.exit(130);
      process.stderr.write(`\n${sig} received: stopping and cleaning up (send again to quit at once)\n`);
      controller.abort(new Error(`interrupted by ${sig}`));
    });
  }
  void cli(process.argv.slice(2), undefined, controller.signal).then((code) => {
    process.exitCode = code;
  });
}
