/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/*
 * Runs a test server so that it ends with the test process that started it: `timeout` ends it after
 * `seconds` whatever happens, and a shell beside it ends it within a second of this process going away (an
 * interrupted `npm test` skips jest's teardown, and `timeout` leaves the terminal's process group, so Ctrl-C
 * never reaches the server itself). Stopping the returned process (SIGTERM) stops the server.
 */
const OWNED = [
  'parent=$1; secs=$2; shift 2',
  'timeout "$secs" "$@" & srv=$!',
  "trap 'kill $srv 2>/dev/null; wait $srv; exit 0' TERM INT HUP",
  'while kill -0 "$parent" 2>/dev/null && kill -0 "$srv" 2>/dev/null; do sleep 1 & wait $!; done',
  'kill $srv 2>/dev/null; wait $srv',
].join('\n');

/** [command, args] for spawn: `cmd args` owned by this process, or by `parent` (see OWNED). */
export function ownedServer(
  seconds: number,
  cmd: string,
  args: string[],
  parent = process.pid,
): [string, string[]] {
  return ['sh', ['-c', OWNED, 'sh', String(parent), String(seconds), cmd, ...args]];
}
