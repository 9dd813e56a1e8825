import {
  modelPackageDemotion,
  modelPackageUpdate,
  type MirrorAction,
  type EndpointConfigRequest,
  type EndpointInfo,
  type ModelPackageRequest,
  type ModelRequest,
  type SageMaker,
  type Tag,
  type TrainingJobInfo,
  type TrainingJobRequest,
} from '../../src/core/sagemaker';

/**
 * A hand-written SageMaker for the calls moto 5.2.1 does not implement (StopTrainingJob, UpdateEndpoint)
 * and for statuses moto never shows (a job that stays InProgress, an endpoint update that fails).
 * Each training job walks through `jobScript` one describe at a time; every call is recorded.
 */
export class FakeSageMaker implements SageMaker {
  readonly calls: string[] = [];
  readonly jobs = new Map<
    string,
    { req: TrainingJobRequest; step: number; stopped: boolean; createdAt: Date }
  >();
  readonly models = new Map<string, ModelRequest>();
  readonly endpointTags = new Map<string, Tag[]>();
  readonly configs = new Map<string, EndpointConfigRequest>();
  /** Each endpoint reports its script one status per describe; the last one stays. */
  readonly endpoints = new Map<string, EndpointInfo & { script: string[] }>();

  constructor(
    private readonly jobScript: Partial<TrainingJobInfo>[] = [
      { status: 'InProgress', secondaryStatus: 'Starting' },
      { status: 'InProgress', secondaryStatus: 'Training' },
    ],
  ) {}

  async createTrainingJob(req: TrainingJobRequest): Promise<void> {
    this.calls.push(`createTrainingJob ${req.TrainingJobName}`);
    this.jobs.set(req.TrainingJobName, { req, step: 0, stopped: false, createdAt: new Date() });
  }
  async describeTrainingJob(name: string): Promise<TrainingJobInfo | undefined> {
    const j = this.jobs.get(name);
    if (!j) return undefined;
    if (j.stopped) return { name, status: 'Stopped', secondaryStatus: 'Stopped' };
    const s = this.jobScript[Math.min(j.step++, this.jobScript.length - 1)];
    return { name, status: 'InProgress', ...s };
  }
  async stopTrainingJob(name: string): Promise<void> {
    this.calls.push(`stopTrainingJob ${name}`);
    const j = this.jobs.get(name);
    if (j) j.stopped = true;
  }
  async listTrainingJobs(prefix: string, o: { activeOnly: boolean }): Promise<TrainingJobInfo[]> {
    const out: TrainingJobInfo[] = [];
    for (const [name, j] of this.jobs) {
      if (!name.startsWith(prefix)) continue;
      // the status the last describe reported, without moving the script on
      const now = this.jobScript[Math.min(Math.max(j.step - 1, 0), this.jobScript.length - 1)];
      const status = j.stopped ? 'Stopped' : (now.status ?? 'InProgress');
      if (o.activeOnly && status !== 'InProgress') continue;
      const tags = Object.fromEntries((j.req.Tags ?? []).map((t) => [t.Key, t.Value]));
      out.push({ name, status, tags, createdAt: j.createdAt });
    }
    return out;
  }
  async createModel(req: ModelRequest): Promise<void> {
    this.calls.push(`createModel ${req.ModelName}`);
    this.models.set(req.ModelName, req);
  }
  async deleteModel(name: string): Promise<void> {
    this.calls.push(`deleteModel ${name}`);
    this.models.delete(name);
  }
  async createEndpointConfig(req: EndpointConfigRequest): Promise<void> {
    this.calls.push(`createEndpointConfig ${req.EndpointConfigName}`);
    for (const v of req.ProductionVariants)
      if (!this.models.has(v.ModelName)) throw new Error(`Could not find model ${v.ModelName}`);
    this.configs.set(req.EndpointConfigName, req);
  }
  async deleteEndpointConfig(name: string): Promise<void> {
    this.calls.push(`deleteEndpointConfig ${name}`);
    this.configs.delete(name);
  }
  async endpointConfigModels(name: string): Promise<string[] | undefined> {
    return this.configs.get(name)?.ProductionVariants.map((v) => v.ModelName);
  }
  async describeEndpoint(name: string): Promise<EndpointInfo | undefined> {
    const e = this.endpoints.get(name);
    if (!e) return undefined;
    e.status = e.script.length > 1 ? e.script.shift()! : e.script[0];
    return { name, status: e.status, configName: e.configName, failureReason: e.failureReason };
  }
  async createEndpoint(name: string, configName: string, tags: Tag[]): Promise<void> {
    this.endpointTags.set(name, tags);
    this.calls.push(`createEndpoint ${name} ${configName}`);
    this.endpoints.set(name, { name, status: 'Creating', configName, script: ['Creating', 'InService'] });
  }
  /** The next updateEndpoint fails the way SageMaker reports it: Failed, still on the previous config. */
  failNextUpdate = false;
  async updateEndpoint(name: string, configName: string): Promise<void> {
    this.calls.push(`updateEndpoint ${name} ${configName}`);
    const e = this.endpoints.get(name);
    if (!e) throw new Error(`Could not find endpoint ${name}`);
    if (this.failNextUpdate) {
      this.failNextUpdate = false;
      e.failureReason = 'the new production variant failed its health checks';
      e.script = ['Updating', 'Failed'];
      return;
    }
    e.configName = configName;
    e.failureReason = undefined;
    e.script = ['Updating', 'InService'];
  }
  async deleteEndpoint(name: string): Promise<void> {
    this.calls.push(`deleteEndpoint ${name}`);
    this.endpoints.delete(name);
  }
  async waitEndpointDeleted(): Promise<void> {}
  /** The mirror's packages by ARN; `failMirror` makes the next call fail as an AWS error would. */
  readonly packages = new Map<string, ModelPackageRequest>();
  failMirror?: Error;
  async mirrorModelPackage(req: ModelPackageRequest): Promise<{ arn: string; action: MirrorAction }> {
    this.calls.push(`mirrorModelPackage ${req.ModelPackageGroupName}`);
    const found = this.changePackage(req.ModelPackageGroupName, req.ModelPackageDescription, (e) =>
      modelPackageUpdate(e, req),
    );
    if (found) return found;
    const arn = `arn:aws:sagemaker:us-east-1:123456789012:model-package/${req.ModelPackageGroupName}/${this.packages.size + 1}`;
    this.packages.set(arn, req);
    return { arn, action: 'created' };
  }
  async demoteModelPackage(
    group: string,
    description: string,
    environment: string,
  ): Promise<{ arn?: string; action: MirrorAction }> {
    this.calls.push(`demoteModelPackage ${group} ${environment}`);
    return (
      this.changePackage(group, description, (e) => modelPackageDemotion(e, environment)) ?? {
        action: 'unchanged',
      }
    );
  }
  /** The package of a folder changed as `change` says; undefined when the group holds none. */
  private changePackage(
    group: string,
    description: string,
    change: (existing: { approval: string; metadata: Record<string, string> }) =>
      | {
          ModelApprovalStatus: ModelPackageRequest['ModelApprovalStatus'];
          CustomerMetadataProperties: Record<string, string>;
        }
      | undefined,
  ): { arn: string; action: MirrorAction } | undefined {
    if (this.failMirror) throw this.failMirror;
    for (const [arn, p] of this.packages)
      if (p.ModelPackageGroupName === group && p.ModelPackageDescription === description) {
        const update = change({ approval: p.ModelApprovalStatus, metadata: p.CustomerMetadataProperties });
        if (!update) return { arn, action: 'unchanged' };
        this.packages.set(arn, { ...p, ...update });
        return { arn, action: 'updated' };
      }
    return undefined;
  }
}
