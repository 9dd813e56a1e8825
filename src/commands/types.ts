import type { CiContext } from '../core/ci-env';
import type { Options, OptionSpec, OutputSpec } from '../core/options';
import type { Clock, Git, Logger, ObjectStore, StateStore } from '../core/ports';

/** Adapters a command may use, built from the resolved options (src/wiring.ts). */
export interface Deps {
  /** Built on first use, so commands that never touch the store need no credentials. */
  store(): ObjectStore;
  git: Git;
  clock: Clock;
  logger: Logger;
  state: StateStore;
  ci: CiContext;
  /** The repository's working directory; relative paths in options are taken from here. */
  cwd: string;
  env: Record<string, string | undefined>;
}

export interface CommandContext {
  options: Options;
  deps: Deps;
  /** Aborted on SIGINT/SIGTERM: long waits stop and cleanup runs. */
  signal: AbortSignal;
}

export interface CommandResult {
  outputs: Record<string, string>;
  /** Markdown for the GitHub step summary. */
  summary?: string;
  /** Plain text for a terminal; the summary is printed when absent. */
  text?: string;
}

export interface CommandDef {
  name: string;
  summary: string;
  options: readonly OptionSpec[];
  outputs: readonly OutputSpec[];
  run(ctx: CommandContext): Promise<CommandResult>;
  /** Runs in the action's post step (and on CLI interruption) from saved state. */
  cleanup?(ctx: CommandContext): Promise<void>;
}
