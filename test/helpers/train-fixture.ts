import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { MemoryState } from '../../src/adapters/system/console-logger';
import type { CommandContext } from '../../src/commands/types';
import { trainCommand } from '../../src/commands/train';
import type { CommandResult } from '../../src/commands/types';
import type { LaunchTargetSpec, ResolvedLaunchTargets } from '../../src/core/launch-targets';
import type { CloudCompute, HostKeys, InstanceInfo, LaunchRequest, ObjectStore } from '../../src/core/ports';
import { resolveFor } from '../../src/runner';
import { createDeps, sshHostSessions } from '../../src/wiring';
import { configToml, TempRepo } from './git-repo';
import { MemoryLogger } from './memory-logger';

export { MemoryLogger };

/**
 * A hand-written cloud compute: every "instance" is the test's sshd on 127.0.0.1; calls are recorded. Key
 * pairs are not made (tests pass ssh-private-key); launch targets are taken as given.
 */
export class FakeCompute implements CloudCompute {
  readonly launched: LaunchRequest[] = [];
  readonly terminated: string[] = [];
  private readonly instances = new Map<string, InstanceInfo>();
  private n = 0;

  constructor(private readonly host = '127.0.0.1') {}

  async launch(req: LaunchRequest): Promise<InstanceInfo> {
    this.launched.push(req);
    const id = `i-fake${String(++this.n).padStart(8, '0')}`;
    const info: InstanceInfo = {
      id,
      state: 'pending',
      instanceType: req.instanceTypes[0],
      imageId: req.imageId,
      host: this.host,
      launchedAt: new Date(),
      tags: req.tags,
    };
    this.instances.set(id, info);
    return { ...info };
  }
  async describe(id: string): Promise<InstanceInfo | undefined> {
    const i = this.instances.get(id);
    return i ? { ...i } : undefined;
  }
  async waitUntilRunning(id: string): Promise<InstanceInfo> {
    const i = this.instances.get(id)!;
    if (i.state === 'terminated') throw new Error(`${id} is terminated`);
    i.state = 'running';
    return { ...i };
  }
  async terminate(id: string): Promise<void> {
    this.terminated.push(id);
    const i = this.instances.get(id);
    if (i) i.state = 'terminated';
  }
  async findByTags(tags: Record<string, string>): Promise<InstanceInfo[]> {
    return [...this.instances.values()].filter(
      (i) => i.state !== 'terminated' && Object.entries(tags).every(([k, v]) => i.tags[k] === v),
    );
  }
  async createKeyPair(): Promise<{ keyName: string; privateKey: string }> {
    throw new Error('FakeCompute makes no key pairs: pass ssh-private-key');
  }
  async deleteKeyPair(): Promise<void> {}
  async hostKeys(): Promise<HostKeys> {
    return { keys: [], fingerprints: [] };
  }
  async resolveLaunchTargets(spec: LaunchTargetSpec): Promise<ResolvedLaunchTargets> {
    return {
      image: { imageId: spec.amiId ?? '', via: 'given' },
      subnetIds: spec.subnetIds ?? [],
      securityGroupIds: spec.securityGroupIds ?? [],
    };
  }
  live(): string[] {
    return [...this.instances.values()].filter((i) => i.state !== 'terminated').map((i) => i.id);
  }
}

/**
 * A repository with a real training script: it reads the config and the input zip, prints progress, and
 * writes model.zip and metrics.json. TRAIN_FAIL=1 makes it fail; the pid file and sleep serve abort tests.
 */
export function trainingRepo(version = '1.0.0'): TempRepo {
  const repo = new TempRepo('mp-train-repo-');
  repo.write(
    'search-config.toml',
    configToml(version, 'name = "search"').replace('epochs = 1', 'epochs = 3'),
  );
  repo.write(
    'Makefile',
    [
      'train:',
      '\tbash scripts/train.sh',
      '',
      'slow:',
      '\techo $$$$ > "$(PID_FILE)"; echo training-started; sleep 60',
      '',
    ].join('\n'),
  );
  repo.write(
    'scripts/train.sh',
    [
      '#!/usr/bin/env bash',
      'set -euo pipefail',
      'echo "config: $MODEL_PIPELINE_CONFIG data: $MODEL_PIPELINE_DATA"',
      'version=$(sed -n \'s/^version = "\\(.*\\)"/\\1/p\' "$MODEL_PIPELINE_CONFIG")',
      'epochs=$(sed -n \'s/^epochs = \\([0-9]*\\)/\\1/p\' "$MODEL_PIPELINE_CONFIG")',
      'rows=$(unzip -p "$MODEL_PIPELINE_DATA" data.csv | wc -l)',
      'for i in $(seq 1 "$epochs"); do echo "epoch $i/$epochs rows=$rows"; done',
      'if [ "${TRAIN_FAIL:-}" = 1 ]; then echo "diverged" >&2; exit 3; fi',
      'work=$(mktemp -d)',
      'echo "weights v$version rows=$rows" > "$work/weights.txt"',
      'rm -f model.zip && (cd "$work" && zip -q -X model.zip weights.txt) && mv "$work/model.zip" model.zip',
      'echo "{\\"passed\\": true, \\"accuracy\\": 0.93, \\"rows\\": $rows}" > metrics.json',
      'echo done',
      '',
    ].join('\n'),
  );
  repo.write('.gitignore', 'model.zip\nmetrics.json\n.model-store/\n');
  repo.write('node_modules/big/index.js', 'not copied\n');
  repo.commit('training repo');
  return repo;
}

/** The keys under `prefix`, relative to it, in store order. */
export async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key.slice(prefix.length));
  return out;
}

/** raw_source_data.zip holding data.csv with `rows` lines. */
export function dataZip(rows = 5): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'mp-data-'));
  writeFileSync(
    path.join(dir, 'data.csv'),
    Array.from({ length: rows }, (_, i) => `${i},x`).join('\n') + '\n',
  );
  execFileSync('zip', ['-q', 'raw_source_data.zip', 'data.csv'], { cwd: dir });
  return path.join(dir, 'raw_source_data.zip');
}

export interface TrainRun {
  logger: MemoryLogger;
  state: MemoryState;
  result?: CommandResult;
  error?: unknown;
}

/** Runs train with the real wiring except Compute (the fake), so SSH goes to the test's sshd. */
export async function trainWithCompute(
  compute: CloudCompute,
  inputs: Record<string, string>,
  cwd: string,
  opts: { signal?: AbortSignal; logger?: MemoryLogger; cleanup?: boolean } = {},
): Promise<TrainRun> {
  const logger = opts.logger ?? new MemoryLogger();
  const state = new MemoryState();
  const env = {};
  const options = await resolveFor(trainCommand, { inputs, env, cwd });
  const base = createDeps(options, { logger, state, env, cwd });
  const ctx: CommandContext = {
    options,
    deps: {
      ...base,
      compute: () => compute,
      hosts: () => sshHostSessions(options, () => compute, { logger, state }),
    },
    signal: opts.signal ?? new AbortController().signal,
  };
  const out: TrainRun = { logger, state };
  try {
    out.result = await trainCommand.run(ctx);
  } catch (err) {
    out.error = err;
  }
  if (opts.cleanup) await trainCommand.cleanup!(ctx);
  return out;
}
