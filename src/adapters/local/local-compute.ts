import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PipelineError } from '../../core/errors';
import type { Compute, InstanceInfo, LaunchRequest } from '../../core/ports';

interface Record_ {
  id: string;
  state: string;
  imageId: string;
  launchedAt: string;
  maxRuntimeSeconds: number;
  tags: Record<string, string>;
}

const ID = /^local-[0-9a-f]{12}$/;

export function defaultLocalInstancesDir(): string {
  return path.join(tmpdir(), 'model-pipeline-instances');
}

/**
 * The local backend's compute: an "instance" is a folder (`<base>/<id>/home`) where commands run as local
 * processes. Terminate kills those processes and removes the folder, the same promise EC2 gives.
 * Everything is on disk, so the action's post step (another process) can terminate by id.
 */
export class LocalCompute implements Compute {
  constructor(readonly baseDir: string = defaultLocalInstancesDir()) {}

  dirOf(id: string): string {
    if (!ID.test(id)) throw new PipelineError(`"${id}" is not a local instance id`);
    return path.join(this.baseDir, id);
  }
  homeOf(id: string): string {
    return path.join(this.dirOf(id), 'home');
  }
  pidsDirOf(id: string): string {
    return path.join(this.dirOf(id), 'pids');
  }

  async launch(req: LaunchRequest): Promise<InstanceInfo> {
    const id = `local-${randomBytes(6).toString('hex')}`;
    await fs.mkdir(this.homeOf(id), { recursive: true });
    await fs.mkdir(this.pidsDirOf(id), { recursive: true });
    const rec: Record_ = {
      id,
      state: 'running',
      imageId: req.imageId || 'local',
      launchedAt: new Date().toISOString(),
      maxRuntimeSeconds: req.maxRuntimeSeconds,
      tags: req.tags,
    };
    await fs.writeFile(path.join(this.dirOf(id), 'instance.json'), JSON.stringify(rec, null, 2));
    return this.info(rec);
  }

  private info(rec: Record_): InstanceInfo {
    return {
      id: rec.id,
      state: rec.state,
      instanceType: 'local',
      imageId: rec.imageId,
      host: 'localhost',
      launchedAt: new Date(rec.launchedAt),
      tags: rec.tags,
    };
  }

  async describe(id: string): Promise<InstanceInfo | undefined> {
    if (!ID.test(id)) return undefined;
    try {
      const text = await fs.readFile(path.join(this.dirOf(id), 'instance.json'), 'utf8');
      return this.info(JSON.parse(text) as Record_);
    } catch {
      return undefined;
    }
  }

  async waitUntilRunning(id: string): Promise<InstanceInfo> {
    const info = await this.describe(id);
    if (!info) throw new PipelineError(`local instance ${id} does not exist (terminated?)`);
    return info;
  }

  async terminate(id: string): Promise<void> {
    if (!ID.test(id)) return;
    const pids = await fs.readdir(this.pidsDirOf(id)).catch(() => [] as string[]);
    for (const name of pids) {
      const pid = Number.parseInt(name, 10);
      if (!Number.isInteger(pid) || pid <= 1) continue;
      for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
        try {
          process.kill(-pid, sig);
        } catch {
          break; // the group is gone
        }
        if (sig === 'SIGTERM') await new Promise((r) => setTimeout(r, 200));
      }
    }
    await fs.rm(this.dirOf(id), { recursive: true, force: true });
  }

  async findByTags(tags: Record<string, string>): Promise<InstanceInfo[]> {
    const names = await fs.readdir(this.baseDir).catch(() => [] as string[]);
    const out: InstanceInfo[] = [];
    for (const name of names) {
      const info = await this.describe(name);
      if (info && Object.entries(tags).every(([k, v]) => info.tags[k] === v)) out.push(info);
    }
    return out;
  }
}
