import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { PipelineError } from '../../core/errors';
import type { ObjectStore } from '../../core/ports';
import {
  localLayout,
  smEnvironment,
  type EndpointInfo,
  type MirrorAction,
  type SageMaker,
  type TrainingJobInfo,
  type TrainingJobRequest,
} from '../../core/sagemaker';
import { ENTRY_SCRIPT } from '../../core/sagemaker-entry';

interface LocalJob {
  info: TrainingJobInfo;
  child?: ChildProcess;
  root: string;
  done: Promise<void>;
}

function run(file: string, args: string[], cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new PipelineError(`${file} ${args[0]} failed (${code}): ${err.trim()}`)),
    );
  });
}

/**
 * The local run of the SageMaker training contract: CreateTrainingJob runs the job's entry (the same script
 * the container runs) as a local process, with /opt/ml's layout under a temporary root
 * (input/data/<channel>, input/config, model, checkpoints, output) and the SM_* variables. Inputs are read
 * from and outputs written to the folder store, at the keys the request's URIs name, and the model folder
 * comes back as `<output>/<job>/output/model.tar.gz`, as SageMaker leaves it.
 * Hosting (models, endpoints) is not emulated: those calls say so.
 */
export class LocalSageMaker implements SageMaker {
  private readonly jobs = new Map<string, LocalJob>();

  constructor(
    private readonly store: ObjectStore,
    private readonly o: { baseDir?: string; onOutput?: (line: string) => void; keepRoot?: boolean } = {},
  ) {}

  /** Store key of a URI the store made (s3://bucket/key or file:///…). */
  private keyOf(uri: string): string {
    const base = this.store.uri('');
    if (!uri.startsWith(base)) throw new PipelineError(`${uri} is not in the store ${base}`);
    return decodeURIComponent(uri.slice(base.length));
  }

  async createTrainingJob(req: TrainingJobRequest): Promise<void> {
    const name = req.TrainingJobName;
    if (this.jobs.has(name)) throw new PipelineError(`training job ${name} already exists`);
    const root = await fs.mkdtemp(path.join(this.o.baseDir ?? tmpdir(), 'mp-sm-'));
    const l = localLayout(root);
    for (const d of [l.code, l.model, l.checkpoints, l.output, l.config])
      await fs.mkdir(d, { recursive: true });
    const source = path.join(root, 'source.tar.gz');
    await this.store.downloadFile(this.keyOf(req.Environment.MODEL_PIPELINE_SOURCE_URI), source);
    await run('tar', ['-xzf', source, '-C', l.code]);
    const channels: string[] = [];
    for (const c of req.InputDataConfig) {
      const uri = c.DataSource.S3DataSource.S3Uri;
      const key = this.keyOf(uri);
      const dir = l.data(c.ChannelName);
      await fs.mkdir(dir, { recursive: true });
      await this.store.downloadFile(key, path.join(dir, path.posix.basename(key)));
      channels.push(c.ChannelName);
    }
    await fs.writeFile(path.join(l.config, 'hyperparameters.json'), JSON.stringify(req.HyperParameters));
    await fs.writeFile(
      path.join(l.config, 'resourceconfig.json'),
      JSON.stringify({ current_host: 'algo-1', hosts: ['algo-1'] }),
    );
    const entry = path.join(root, 'entry.sh');
    await fs.writeFile(entry, ENTRY_SCRIPT, { mode: 0o755 });
    const env = {
      ...process.env,
      ...smEnvironment({
        root,
        channels,
        hyperparameters: req.HyperParameters,
        instanceType: req.ResourceConfig.InstanceType,
      }),
      ...req.Environment,
      MODEL_PIPELINE_ML_ROOT: root,
    };
    const info: TrainingJobInfo = { name, status: 'InProgress', secondaryStatus: 'Training' };
    const child = spawn('sh', [entry], {
      cwd: l.code,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const job: LocalJob = { info, child, root, done: Promise.resolve() };
    for (const s of [child.stdout, child.stderr])
      createInterface({ input: s }).on('line', (line) => this.o.onOutput?.(line));
    const timer = setTimeout(() => {
      job.info = { ...job.info, status: 'Stopping', secondaryStatus: 'MaxRuntimeExceeded' };
      this.kill(child);
    }, req.StoppingCondition.MaxRuntimeInSeconds * 1000);
    job.done = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        void this.finish(job, req, code, signal).then(resolve, (err: Error) => {
          job.info = { name, status: 'Failed', secondaryStatus: 'Failed', failureReason: err.message };
          resolve();
        });
      });
    });
    this.jobs.set(name, job);
  }

  private kill(child: ChildProcess): void {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
  }

  private async finish(
    job: LocalJob,
    req: TrainingJobRequest,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): Promise<void> {
    const name = req.TrainingJobName;
    try {
      if (job.info.status === 'Stopping') {
        const maxRuntime = job.info.secondaryStatus === 'MaxRuntimeExceeded';
        job.info = {
          name,
          status: maxRuntime ? 'Failed' : 'Stopped',
          secondaryStatus: maxRuntime ? 'MaxRuntimeExceeded' : 'Stopped',
          failureReason: maxRuntime
            ? `the job ran longer than MaxRuntimeInSeconds (${req.StoppingCondition.MaxRuntimeInSeconds})`
            : undefined,
        };
        return;
      }
      if (code !== 0) {
        job.info = {
          name,
          status: 'Failed',
          secondaryStatus: 'Failed',
          failureReason: `AlgorithmError: the entry exited with ${code ?? signal}`,
        };
        return;
      }
      const l = localLayout(job.root);
      const tarball = path.join(job.root, 'model.tar.gz');
      await run('tar', ['-czf', tarball, '-C', l.model, '.']);
      const key =
        this.keyOf(req.OutputDataConfig.S3OutputPath).replace(/\/?$/, '/') + `${name}/output/model.tar.gz`;
      await this.store.uploadFile(key, tarball);
      job.info = {
        name,
        status: 'Completed',
        secondaryStatus: 'Completed',
        modelArtifacts: this.store.uri(key),
      };
    } finally {
      if (!this.o.keepRoot) await fs.rm(job.root, { recursive: true, force: true });
    }
  }

  /** Resolves when the job's process has ended and its outputs are stored (tests). */
  async settled(name: string): Promise<void> {
    await this.jobs.get(name)?.done;
  }

  async describeTrainingJob(name: string): Promise<TrainingJobInfo | undefined> {
    const job = this.jobs.get(name);
    return job && { ...job.info };
  }

  async stopTrainingJob(name: string): Promise<void> {
    const job = this.jobs.get(name);
    if (!job || job.info.status !== 'InProgress') return;
    job.info = { ...job.info, status: 'Stopping', secondaryStatus: 'Stopping' };
    if (job.child) this.kill(job.child);
    await job.done;
  }

  async listTrainingJobs(namePrefix: string, o: { activeOnly: boolean }): Promise<TrainingJobInfo[]> {
    return [...this.jobs.values()]
      .map((j) => j.info)
      .filter(
        (i) =>
          i.name.startsWith(namePrefix) &&
          (!o.activeOnly || i.status === 'InProgress' || i.status === 'Stopping'),
      );
  }

  private hosting(): never {
    throw new PipelineError('the local SageMaker runs training jobs only: deploy needs the aws backend');
  }
  createModel(): Promise<void> {
    return this.hosting();
  }
  deleteModel(): Promise<void> {
    return this.hosting();
  }
  createEndpointConfig(): Promise<void> {
    return this.hosting();
  }
  deleteEndpointConfig(): Promise<void> {
    return this.hosting();
  }
  endpointConfigModels(): Promise<string[] | undefined> {
    return this.hosting();
  }
  describeEndpoint(): Promise<EndpointInfo | undefined> {
    return this.hosting();
  }
  createEndpoint(): Promise<void> {
    return this.hosting();
  }
  updateEndpoint(): Promise<void> {
    return this.hosting();
  }
  deleteEndpoint(): Promise<void> {
    return this.hosting();
  }
  waitEndpointDeleted(): Promise<void> {
    return this.hosting();
  }
  mirrorModelPackage(): Promise<{ arn: string; action: MirrorAction }> {
    return this.hosting();
  }
  demoteModelPackage(): Promise<{ arn?: string; action: MirrorAction }> {
    return this.hosting();
  }
}
