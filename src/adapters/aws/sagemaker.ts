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
  DescribeModelPackageGroupCommand,
  DescribeTrainingJobCommand,
  paginateListTrainingJobs,
  SageMakerClient,
  StopTrainingJobCommand,
  UpdateEndpointCommand,
  waitUntilEndpointDeleted,
  type CreateEndpointConfigCommandInput,
  type CreateModelPackageCommandInput,
  type CreateTrainingJobCommandInput,
  type TrainingJobStatus as SdkTrainingJobStatus,
} from '@aws-sdk/client-sagemaker';
import type {
  EndpointConfigRequest,
  EndpointInfo,
  ModelPackageRequest,
  ModelRequest,
  SageMaker,
  Tag,
  TrainingJobInfo,
  TrainingJobRequest,
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

  async runningTrainingJobs(namePrefix: string): Promise<TrainingJobInfo[]> {
    const out: TrainingJobInfo[] = [];
    for (const status of ['InProgress', 'Stopping'] as SdkTrainingJobStatus[]) {
      const pages = paginateListTrainingJobs(
        { client: this.client },
        { NameContains: namePrefix, StatusEquals: status },
      );
      for await (const page of pages)
        for (const j of page.TrainingJobSummaries ?? [])
          if (j.TrainingJobName?.startsWith(namePrefix))
            out.push({
              name: j.TrainingJobName,
              status: j.TrainingJobStatus ?? status,
              secondaryStatus: j.SecondaryStatus,
            });
    }
    return out;
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

  async registerModelPackage(req: ModelPackageRequest): Promise<string> {
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
    const r = await this.call(`CreateModelPackage in ${group}`, () =>
      this.client.send(new CreateModelPackageCommand(req as CreateModelPackageCommandInput)),
    );
    return r.ModelPackageArn ?? '';
  }
}
