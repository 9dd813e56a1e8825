import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  CreateModelPackageCommand,
  CreateModelPackageGroupCommand,
  CreateTrainingJobCommand,
  DeleteEndpointCommand,
  DeleteEndpointConfigCommand,
  DeleteModelCommand,
  DescribeEndpointCommand,
  DescribeEndpointConfigCommand,
  DescribeModelPackageCommand,
  DescribeModelPackageGroupCommand,
  DescribeTrainingJobCommand,
  paginateListModelPackages,
  paginateListTags,
  paginateListTrainingJobs,
  SageMakerClient,
  StopTrainingJobCommand,
  UpdateEndpointCommand,
  UpdateModelPackageCommand,
  type UpdateModelPackageCommandInput,
  waitUntilEndpointDeleted,
  type CreateEndpointConfigCommandInput,
  type CreateModelPackageCommandInput,
  type CreateTrainingJobCommandInput,
  type TrainingJobStatus as SdkTrainingJobStatus,
} from '@aws-sdk/client-sagemaker';
import { createHash } from 'node:crypto';
import {
  modelPackageDemotion,
  modelPackageUpdate,
  type EndpointConfigRequest,
  type MirrorAction,
  EndpointInfo,
  type ModelPackageRequest,
  type ModelRequest,
  type SageMaker,
  type Tag,
  type TrainingJobInfo,
  type TrainingJobRequest,
} from '../../core/sagemaker';
import { bindAbortSignal, boundedClientConfig, registerCleanupCommand } from './client-config';
import { describeAwsError } from './errors';
import { DEFAULT_REGION } from '../../core/region';

export interface SageMakerOptions {
  region?: string;
  /** Custom endpoint (moto in tests). */
  endpoint?: string;
  client?: SageMakerClient;
  /** The command's abort signal, bound to every call but the ones that clean up (stop, delete). */
  signal?: AbortSignal;
}

// a stopped run must still stop its training job and remove what a failed deploy created
for (const c of [
  StopTrainingJobCommand,
  DeleteModelCommand,
  DeleteEndpointConfigCommand,
  DeleteEndpointCommand,
  DescribeTrainingJobCommand,
  DescribeEndpointConfigCommand,
])
  registerCleanupCommand(c);

/** SageMaker answers "not found" with a ValidationException whose message says "Could not find". */
function notFound(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  return (
    e?.name === 'ResourceNotFound' ||
    ((e?.name === 'ValidationException' || e?.name === 'ValidationError') &&
      /could not find|does not exist|not found/i.test(e.message ?? ''))
  );
}

export class AwsSageMaker implements SageMaker {
  readonly client: SageMakerClient;

  constructor(o: SageMakerOptions = {}) {
    this.client =
      o.client ??
      bindAbortSignal(
        new SageMakerClient({
          ...boundedClientConfig(),
          region: o.region ?? DEFAULT_REGION,
          endpoint: o.endpoint || undefined,
        }),
        o.signal,
      );
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw describeAwsError(err, what);
    }
  }

  async createTrainingJob(req: TrainingJobRequest): Promise<void> {
    await this.call(`CreateTrainingJob ${req.TrainingJobName}`, () =>
      this.client.send(new CreateTrainingJobCommand(req as CreateTrainingJobCommandInput)),
    );
  }

  async describeTrainingJob(name: string): Promise<TrainingJobInfo | undefined> {
    try {
      const r = await this.client.send(new DescribeTrainingJobCommand({ TrainingJobName: name }));
      return {
        name,
        status: r.TrainingJobStatus ?? 'InProgress',
        secondaryStatus: r.SecondaryStatus,
        failureReason: r.FailureReason,
        modelArtifacts: r.ModelArtifacts?.S3ModelArtifacts,
      };
    } catch (err) {
      if (notFound(err)) return undefined;
      throw describeAwsError(err, `DescribeTrainingJob ${name}`);
    }
  }

  async stopTrainingJob(name: string): Promise<void> {
    try {
      await this.client.send(new StopTrainingJobCommand({ TrainingJobName: name }));
    } catch (err) {
      if (notFound(err)) return;
      // a job that already finished cannot be stopped: that is what we wanted
      if (/status|cannot be stopped|not in progress/i.test((err as Error).message ?? '')) return;
      throw describeAwsError(err, `StopTrainingJob ${name}`);
    }
  }

  async listTrainingJobs(
    namePrefix: string,
    o: { activeOnly: boolean; createdAfter?: Date },
  ): Promise<TrainingJobInfo[]> {
    const out: TrainingJobInfo[] = [];
    const statuses: (SdkTrainingJobStatus | undefined)[] = o.activeOnly
      ? ['InProgress', 'Stopping']
      : [undefined];
    for (const status of statuses) {
      const pages = paginateListTrainingJobs(
        { client: this.client },
        { NameContains: namePrefix, StatusEquals: status, CreationTimeAfter: o.createdAfter },
      );
      for await (const page of pages)
        for (const j of page.TrainingJobSummaries ?? [])
          if (j.TrainingJobName?.startsWith(namePrefix))
            out.push({
              name: j.TrainingJobName,
              status: j.TrainingJobStatus ?? status ?? 'InProgress',
              secondaryStatus: j.SecondaryStatus,
              createdAt: j.CreationTime,
              tags: j.TrainingJobArn ? await this.tagsOf(j.TrainingJobArn) : {},
            });
    }
    return out;
  }

  private async tagsOf(arn: string): Promise<Record<string, string>> {
    const tags: Record<string, string> = {};
    try {
      for await (const page of paginateListTags({ client: this.client }, { ResourceArn: arn }))
        for (const t of page.Tags ?? []) if (t.Key) tags[t.Key] = t.Value ?? '';
    } catch (err) {
      if (notFound(err)) return tags;
      throw describeAwsError(err, `ListTags ${arn}`);
    }
    return tags;
  }

  async createModel(req: ModelRequest): Promise<void> {
    await this.call(`CreateModel ${req.ModelName}`, () => this.client.send(new CreateModelCommand(req)));
  }

  async deleteModel(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteModelCommand({ ModelName: name }));
    } catch (err) {
      if (!notFound(err)) throw describeAwsError(err, `DeleteModel ${name}`);
    }
  }

  async createEndpointConfig(req: EndpointConfigRequest): Promise<void> {
    await this.call(`CreateEndpointConfig ${req.EndpointConfigName}`, () =>
      this.client.send(new CreateEndpointConfigCommand(req as CreateEndpointConfigCommandInput)),
    );
  }

  async deleteEndpointConfig(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteEndpointConfigCommand({ EndpointConfigName: name }));
    } catch (err) {
      if (!notFound(err)) throw describeAwsError(err, `DeleteEndpointConfig ${name}`);
    }
  }

  async endpointConfigModels(name: string): Promise<string[] | undefined> {
    try {
      const r = await this.client.send(new DescribeEndpointConfigCommand({ EndpointConfigName: name }));
      return (r.ProductionVariants ?? []).map((v) => v.ModelName ?? '').filter(Boolean);
    } catch (err) {
      if (notFound(err)) return undefined;
      throw describeAwsError(err, `DescribeEndpointConfig ${name}`);
    }
  }

  async describeEndpoint(name: string): Promise<EndpointInfo | undefined> {
    try {
      const r = await this.client.send(new DescribeEndpointCommand({ EndpointName: name }));
      return {
        name,
        status: r.EndpointStatus ?? 'Creating',
        configName: r.EndpointConfigName ?? '',
        failureReason: r.FailureReason,
      };
    } catch (err) {
      if (notFound(err)) return undefined;
      throw describeAwsError(err, `DescribeEndpoint ${name}`);
    }
  }

  async createEndpoint(name: string, configName: string, tags: Tag[]): Promise<void> {
    await this.call(`CreateEndpoint ${name}`, () =>
      this.client.send(
        new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: configName, Tags: tags }),
      ),
    );
  }

  async updateEndpoint(name: string, configName: string): Promise<void> {
    await this.call(`UpdateEndpoint ${name}`, () =>
      this.client.send(new UpdateEndpointCommand({ EndpointName: name, EndpointConfigName: configName })),
    );
  }

  async deleteEndpoint(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteEndpointCommand({ EndpointName: name }));
    } catch (err) {
      if (!notFound(err)) throw describeAwsError(err, `DeleteEndpoint ${name}`);
    }
  }

  async waitEndpointDeleted(name: string, timeoutSeconds: number): Promise<void> {
    await waitUntilEndpointDeleted(
      { client: this.client, maxWaitTime: timeoutSeconds, minDelay: 1, maxDelay: 30 },
      { EndpointName: name },
    );
  }

  async mirrorModelPackage(req: ModelPackageRequest): Promise<{ arn: string; action: MirrorAction }> {
    const group = req.ModelPackageGroupName;
    try {
      await this.client.send(new DescribeModelPackageGroupCommand({ ModelPackageGroupName: group }));
    } catch (err) {
      if (!notFound(err)) throw describeAwsError(err, `DescribeModelPackageGroup ${group}`);
      await this.call(`CreateModelPackageGroup ${group}`, () =>
        this.client.send(
          new CreateModelPackageGroupCommand({
            ModelPackageGroupName: group,
            ModelPackageGroupDescription:
              'Mirror of the model-pipeline store (the store is the source of truth)',
          }),
        ),
      );
    }
    const found = await this.findPackage(group, req.ModelPackageDescription);
    if (!found) {
      // the same token for the same folder: two promotions racing to create its package make one
      const token = createHash('sha256').update(`${group}\n${req.ModelPackageDescription}`).digest('hex');
      const r = await this.call(`CreateModelPackage in ${group}`, () =>
        this.client.send(
          new CreateModelPackageCommand({
            ...(req as CreateModelPackageCommandInput),
            ClientToken: token.slice(0, 36),
          }),
        ),
      );
      return { arn: r.ModelPackageArn ?? '', action: 'created' };
    }
    return this.updatePackage(found, (existing) => modelPackageUpdate(existing, req));
  }

  async demoteModelPackage(
    group: string,
    description: string,
    environment: string,
  ): Promise<{ arn?: string; action: MirrorAction }> {
    try {
      await this.client.send(new DescribeModelPackageGroupCommand({ ModelPackageGroupName: group }));
    } catch (err) {
      if (notFound(err)) return { action: 'unchanged' }; // nothing was ever mirrored there
      throw describeAwsError(err, `DescribeModelPackageGroup ${group}`);
    }
    const found = await this.findPackage(group, description);
    if (!found) return { action: 'unchanged' };
    return this.updatePackage(found, (existing) => {
      const update = modelPackageDemotion(existing, environment);
      return (
        update && {
          ...update,
          ApprovalDescription: `rolled back out of ${environment} by model-pipeline demote`,
        }
      );
    });
  }

  /** Reads a package's approval and metadata, and writes what `change` makes of them, if anything. */
  private async updatePackage(
    arn: string,
    change: (existing: {
      approval?: string;
      metadata: Record<string, string>;
    }) => Omit<UpdateModelPackageCommandInput, 'ModelPackageArn'> | undefined,
  ): Promise<{ arn: string; action: MirrorAction }> {
    const d = await this.call(`DescribeModelPackage ${arn}`, () =>
      this.client.send(new DescribeModelPackageCommand({ ModelPackageName: arn })),
    );
    const update = change({ approval: d.ModelApprovalStatus, metadata: d.CustomerMetadataProperties ?? {} });
    if (!update) return { arn, action: 'unchanged' };
    await this.call(`UpdateModelPackage ${arn}`, () =>
      this.client.send(new UpdateModelPackageCommand({ ModelPackageArn: arn, ...update })),
    );
    return { arn, action: 'updated' };
  }

  /** The package version of a model folder in the group, by its description (newest first). */
  private findPackage(group: string, description: string): Promise<string | undefined> {
    return this.call(`ListModelPackages ${group}`, async () => {
      const pages = paginateListModelPackages(
        { client: this.client },
        { ModelPackageGroupName: group, SortBy: 'CreationTime', SortOrder: 'Descending' },
      );
      for await (const page of pages)
        for (const p of page.ModelPackageSummaryList ?? [])
          if (p.ModelPackageDescription === description && p.ModelPackageArn) return p.ModelPackageArn;
      return undefined;
    });
  }
}
