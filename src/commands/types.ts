import type { CiContext } from '../core/ci-env';
import type { OptionSpec, OutputSpec } from '../core/options';
import type { PipelineOptions } from './option-table';
import type {
  Archives,
  CiRuns,
  Clock,
  Compute,
  Git,
  HostSessions,
  ImageBuilder,
  ImageRegistry,
  Logger,
  ObjectStore,
  StateStore,
} from '../core/ports';

/** Adapters a command may use, built from the resolved options (src/wiring.ts). */
export interface Deps {
  /** Built on first use, so commands that never touch the store need no credentials. */
  store(): ObjectStore;
  /**
   * The training machine backend (EC2, or local processes for the local backend); built on first use.
   * `aws` asks for EC2 whatever the store backend (sweep: instances are on EC2 unless told `--local`).
   */
  compute(kind?: 'aws'): Compute;
  /** Where train gets its host (EC2 over SSH, a local work folder), and the post step's cleanup of one. */
  hosts(): HostSessions;
  /** AMIs of the region (EC2); built on first use. */
  images(): ImageRegistry;
  /** Packer (on PATH, else the pinned release installed into the tool cache); built on first use. */
  imageBuilder(): ImageBuilder;
  /** Zip archives (yauzl): fetch-model unpacks model.zip with it, download checks it. */
  archives: Archives;
  git: Git;
  clock: Clock;
  logger: Logger;
  state: StateStore;
  ci: CiContext;
  /** The CI's API, asked whether a run has finished (sweep); built on first use. */
  ciRuns(): CiRuns;
  /** The repository's working directory; relative paths in options are taken from here. */
  cwd: string;
  env: Record<string, string | undefined>;
}

export interface CommandContext {
  options: PipelineOptions;
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
