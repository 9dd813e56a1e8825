import { UserError } from './errors';

/**
 * The pure half of the SageMaker engine: request building, names, status transitions and the local
 * contract's folders and variables. No SDK here: the request shapes below carry the SageMaker API's field
 * names, so the adapter (src/adapters/aws/sagemaker.ts) sends them as they are.
 */

export interface Tag {
  Key: string;
  Value: string;
}

export interface S3Channel {
  ChannelName: string;
  DataSource: { S3DataSource: { S3DataType: 'S3Prefix'; S3Uri: string; S3DataDistributionType: string } };
  InputMode: 'File';
}

/** CreateTrainingJob as we send it (field names of the SageMaker API). */
export interface TrainingJobRequest {
  TrainingJobName: string;
  RoleArn: string;
  AlgorithmSpecification: { TrainingImage: string; TrainingInputMode: 'File' };
  HyperParameters: Record<string, string>;
  Environment: Record<string, string>;
  InputDataConfig: S3Channel[];
  OutputDataConfig: { S3OutputPath: string };
  ResourceConfig: { InstanceType: string; InstanceCount: number; VolumeSizeInGB: number };
  StoppingCondition: { MaxRuntimeInSeconds: number; MaxWaitTimeInSeconds?: number };
  EnableManagedSpotTraining: boolean;
  CheckpointConfig?: { S3Uri: string; LocalPath: string };
  Tags: Tag[];
}

export type TrainingJobStatus = 'InProgress' | 'Completed' | 'Failed' | 'Stopping' | 'Stopped';

export interface TrainingJobInfo {
  name: string;
  status: TrainingJobStatus | string;
  /** SageMaker's finer status: Starting, Downloading, Training, Uploading, Completed, ... */
  secondaryStatus?: string;
  failureReason?: string;
  /** S3 URI of model.tar.gz (the job's /opt/ml/model), once it completed. */
  modelArtifacts?: string;
  tags?: Record<string, string>;
  createdAt?: Date;
}

export interface EndpointInfo {
  name: string;
  status: string;
  configName: string;
  failureReason?: string;
}

export interface ModelRequest {
  ModelName: string;
  ExecutionRoleArn: string;
  PrimaryContainer: { Image: string; Environment: Record<string, string>; ModelDataUrl?: string };
  Tags: Tag[];
}

export interface EndpointConfigRequest {
  EndpointConfigName: string;
  ProductionVariants: {
    VariantName: string;
    ModelName: string;
    InstanceType: string;
    InitialInstanceCount: number;
  }[];
  Tags: Tag[];
}

export interface ModelPackageRequest {
  ModelPackageGroupName: string;
  /** `model-pipeline <prefix>`: how the mirror finds the package of a model folder again. */
  ModelPackageDescription: string;
  ModelApprovalStatus: ModelApprovalStatus;
  CustomerMetadataProperties: Record<string, string>;
  InferenceSpecification?: {
    Containers: { Image: string; ModelDataUrl?: string; Environment?: Record<string, string> }[];
    SupportedContentTypes: string[];
    SupportedResponseMIMETypes: string[];
  };
}

/**
 * What commands ask of SageMaker. The AWS adapter implements it with the SDK; tests use it against moto
 * and, for the calls moto lacks (StopTrainingJob, UpdateEndpoint), a fake.
 */
export interface SageMaker {
  createTrainingJob(req: TrainingJobRequest): Promise<void>;
  describeTrainingJob(name: string): Promise<TrainingJobInfo | undefined>;
  /** Idempotent: stopping a finished or unknown job is not an error. */
  stopTrainingJob(name: string): Promise<void>;
  /**
   * Jobs whose name starts with the prefix, with their tags and creation time, across all pages: only the
   * running ones (InProgress or Stopping) when `activeOnly`, else those created after `createdAfter`.
   */
  listTrainingJobs(
    namePrefix: string,
    o: { activeOnly: boolean; createdAfter?: Date },
  ): Promise<TrainingJobInfo[]>;
  createModel(req: ModelRequest): Promise<void>;
  deleteModel(name: string): Promise<void>;
  createEndpointConfig(req: EndpointConfigRequest): Promise<void>;
  deleteEndpointConfig(name: string): Promise<void>;
  /** The model names an endpoint config serves; undefined when it does not exist. */
  endpointConfigModels(name: string): Promise<string[] | undefined>;
  describeEndpoint(name: string): Promise<EndpointInfo | undefined>;
  createEndpoint(name: string, configName: string, tags: Tag[]): Promise<void>;
  updateEndpoint(name: string, configName: string): Promise<void>;
  deleteEndpoint(name: string): Promise<void>;
  /** Resolves once the endpoint is gone (an SDK waiter on AWS). */
  waitEndpointDeleted(name: string, timeoutSeconds: number): Promise<void>;
  /**
   * The registry mirror: creates the group when missing; the package version of the request's model
   * folder (found by its description) is created, or updated as `modelPackageUpdate` says, or left alone.
   */
  mirrorModelPackage(req: ModelPackageRequest): Promise<{ arn: string; action: MirrorAction }>;
  /**
   * demote's side of the mirror: the package of the model folder (by its description) rolled back out of
   * `environment` is updated as `modelPackageDemotion` says; none there (never mirrored): nothing to do.
   */
  demoteModelPackage(
    group: string,
    description: string,
    environment: string,
  ): Promise<{ arn?: string; action: MirrorAction }>;
}

const ECR_IMAGE =
  /^(\d{12})\.dkr\.ecr(-fips)?\.([a-z]{2}(-[a-z]+)+-\d)\.amazonaws\.com(\.cn)?\/([a-z0-9]+([._/-][a-z0-9]+)*)(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})?$/;

/** A training or serving image must live in ECR: `<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]`. */
export function checkEcrImage(image: string | undefined, setting: string): string {
  const v = image?.trim() ?? '';
  if (!v)
    throw new UserError(
      `${setting} is required: an ECR image URI such as 123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1`,
    );
  if (!ECR_IMAGE.test(v))
    throw new UserError(
      `${setting} "${v}" is not an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag]); SageMaker pulls images only from ECR`,
    );
  return v;
}

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

export function checkRoleArn(role: string | undefined, setting: string): string {
  const v = role?.trim() ?? '';
  if (!v)
    throw new UserError(
      `${setting} is required: the ARN of the IAM role SageMaker runs as (arn:aws:iam::<account>:role/<name>)`,
    );
  if (!ROLE_ARN.test(v))
    throw new UserError(`${setting} "${v}" is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)`);
  return v;
}

/** SageMaker resource names: letters, digits and single hyphens, at most 63 characters. */
export function sagemakerName(parts: string[], suffix = ''): string {
  const max = 63 - suffix.length;
  const base = parts
    .join('-')
    .replace(/[^A-Za-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, max)
    .replace(/-$/, '');
  return (base || 'model') + suffix;
}

/** Every training job this tool creates is named `mp-…` (sweep lists them, the IAM policy scopes them so). */
export const TRAINING_JOB_PREFIX = 'mp-';

/** One job per model folder and attempt: `mp-<model>-<version>-<sha7>-<random>`. */
export function trainingJobName(modelFolder: string, random: string): string {
  return sagemakerName([TRAINING_JOB_PREFIX.slice(0, -1), modelFolder], `-${random}`);
}

/** The endpoint an environment's model is served from: `<model>-<environment>` (or the given name). */
export function endpointName(model: string, environment: string): string {
  return sagemakerName([model, environment]);
}

/** A model and its endpoint config are named per deployment, so an update never touches the running one. */
export function deploymentName(endpoint: string, version: string, stamp: string): string {
  return sagemakerName([endpoint, version], `-${stamp}`);
}

/** `[hyperparameters]` of the model config as SageMaker wants them: strings, scalar values only. */
export function hyperparametersFrom(values: Record<string, unknown>, table: string): Record<string, string> {
  const raw = values[table];
  if (raw === undefined) return {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new UserError(`config key "${table}" must be a table of hyperparameters ([${table}])`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (k.length > 256)
      throw new UserError(`hyperparameter "${k.slice(0, 40)}…" is longer than 256 characters`);
    let s: string;
    if (typeof v === 'string') s = v;
    else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') s = String(v);
    else if (v instanceof Date) s = v.toISOString();
    else s = JSON.stringify(v);
    if (s.length > 2500) throw new UserError(`hyperparameter "${k}" is longer than 2500 characters`);
    out[k] = s;
  }
  if (Object.keys(out).length > 100) throw new UserError(`[${table}] holds more than 100 hyperparameters`);
  return out;
}

/** `key=value` tags for every resource a run creates: the model folder and the CI run that created it. */
export function runTags(o: {
  modelPrefix: string;
  repo?: string;
  runUrl?: string;
  extra?: Record<string, string>;
}): Tag[] {
  const tags: Record<string, string> = {
    'model-pipeline:model-prefix': o.modelPrefix,
    ...(o.repo ? { 'model-pipeline:repository': o.repo } : {}),
    ...(o.runUrl ? { 'model-pipeline:run': o.runUrl } : {}),
    ...o.extra,
  };
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value: Value.slice(0, 256) }));
}

export const DATA_CHANNEL = 'training';
export const CHECKPOINT_LOCAL_PATH = '/opt/ml/checkpoints';

export interface TrainingJobSpec {
  jobName: string;
  image: string;
  role: string;
  instanceType: string;
  instanceCount: number;
  volumeGiB: number;
  /** Managed spot: SageMaker waits up to maxWaitSeconds (>= maxRuntimeSeconds) for capacity and runtime. */
  spot: boolean;
  maxWaitSeconds?: number;
  maxRuntimeSeconds: number;
  hyperparameters: Record<string, string>;
  /** S3 URI of the store's data key, fed as the `training` channel. */
  dataUri?: string;
  /** S3 URI of the repository's source archive. */
  sourceUri: string;
  /** S3 prefix checkpoints are synced to (spot resumes from it). */
  checkpointUri?: string;
  /** S3 prefix SageMaker writes `<job>/output/model.tar.gz` under. */
  outputUri: string;
  /** What the job's entry runs and where: MODEL_PIPELINE_* variables for the training command. */
  environment: Record<string, string>;
  tags: Tag[];
}

/** Every check before anything is created in AWS: a typo must cost nothing. */
export function buildTrainingJobRequest(s: TrainingJobSpec): TrainingJobRequest {
  const image = checkEcrImage(s.image, 'sagemaker-image');
  const role = checkRoleArn(s.role, 'sagemaker-role');
  if (!/^ml\.[a-z0-9]+\.[a-z0-9]+$/.test(s.instanceType))
    throw new UserError(
      `sagemaker-instance-type "${s.instanceType}" is not a SageMaker instance type (e.g. ml.g5.xlarge)`,
    );
  if (!Number.isInteger(s.instanceCount) || s.instanceCount < 1)
    throw new UserError(`sagemaker-instance-count must be at least 1, got ${s.instanceCount}`);
  if (!Number.isInteger(s.volumeGiB) || s.volumeGiB < 1)
    throw new UserError(`sagemaker-volume-gib must be at least 1, got ${s.volumeGiB}`);
  if (s.maxRuntimeSeconds < 1) throw new UserError('max-runtime must be at least 1s');
  const stopping: TrainingJobRequest['StoppingCondition'] = { MaxRuntimeInSeconds: s.maxRuntimeSeconds };
  if (s.spot) {
    const wait = s.maxWaitSeconds ?? s.maxRuntimeSeconds;
    if (wait < s.maxRuntimeSeconds)
      throw new UserError(
        `max-wait (${wait}s) must be at least max-runtime (${s.maxRuntimeSeconds}s): it bounds waiting for spot capacity plus the run`,
      );
    stopping.MaxWaitTimeInSeconds = wait;
  } else if (s.maxWaitSeconds !== undefined) {
    throw new UserError('max-wait applies to managed spot only: set spot true, or drop max-wait');
  }
  for (const [k, v] of Object.entries(s.environment))
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,1023}$/.test(k) || v.length > 512)
      throw new UserError(`environment variable ${k} of the training job is not a valid name or too long`);
  const channels: S3Channel[] = s.dataUri
    ? [
        {
          ChannelName: DATA_CHANNEL,
          DataSource: {
            S3DataSource: {
              S3DataType: 'S3Prefix',
              S3Uri: s.dataUri,
              S3DataDistributionType: 'FullyReplicated',
            },
          },
          InputMode: 'File',
        },
      ]
    : [];
  return {
    TrainingJobName: s.jobName,
    RoleArn: role,
    AlgorithmSpecification: { TrainingImage: image, TrainingInputMode: 'File' },
    HyperParameters: {
      ...s.hyperparameters,
      // script mode's convention: the framework containers fetch and unpack this archive
      sagemaker_submit_directory: s.sourceUri,
    },
    Environment: { ...s.environment, MODEL_PIPELINE_SOURCE_URI: s.sourceUri },
    InputDataConfig: channels,
    OutputDataConfig: { S3OutputPath: s.outputUri },
    ResourceConfig: {
      InstanceType: s.instanceType,
      InstanceCount: s.instanceCount,
      VolumeSizeInGB: s.volumeGiB,
    },
    StoppingCondition: stopping,
    EnableManagedSpotTraining: s.spot,
    ...(s.checkpointUri
      ? { CheckpointConfig: { S3Uri: s.checkpointUri, LocalPath: CHECKPOINT_LOCAL_PATH } }
      : {}),
    Tags: s.tags,
  };
}

/** Keys under the store a SageMaker run uses (source archive, checkpoints, raw job output). */
export function sagemakerKeys(storeRoot: string, modelFolder: string, jobName: string) {
  const root = storeRoot ? storeRoot.replace(/\/+$/, '') + '/' : '';
  const base = `${root}sagemaker/`;
  return {
    source: `${base}jobs/${jobName}/source.tar.gz`,
    output: `${base}jobs/${jobName}/output/`,
    /** Per model folder, so a spot restart of the same model resumes from its checkpoints. */
    checkpoints: `${base}checkpoints/${modelFolder.replace(/\/+$/, '')}/`,
  };
}

/** One progress line per change of (status, secondary status), nothing when nothing changed. */
export function statusTransition(
  previous: Pick<TrainingJobInfo, 'status' | 'secondaryStatus'> | undefined,
  now: TrainingJobInfo,
): string | undefined {
  if (previous && previous.status === now.status && previous.secondaryStatus === now.secondaryStatus)
    return undefined;
  const detail = now.secondaryStatus && now.secondaryStatus !== now.status ? ` (${now.secondaryStatus})` : '';
  const from = previous ? `${previous.secondaryStatus ?? previous.status} -> ` : '';
  return `training job ${now.name}: ${from}${now.status}${detail}${now.failureReason ? `: ${now.failureReason}` : ''}`;
}

export function isTerminal(status: string): boolean {
  return status === 'Completed' || status === 'Failed' || status === 'Stopped';
}

/** The local contract: SageMaker's /opt/ml layout under a root folder. */
export function localLayout(root: string): {
  code: string;
  data: (channel: string) => string;
  model: string;
  checkpoints: string;
  output: string;
  config: string;
} {
  const j = (...p: string[]): string => [root.replace(/\/+$/, ''), ...p].join('/');
  return {
    code: j('code'),
    data: (channel) => j('input', 'data', channel),
    model: j('model'),
    checkpoints: j('checkpoints'),
    output: j('output'),
    config: j('input', 'config'),
  };
}

/** The SM_* variables SageMaker's training toolkit sets, for a run rooted at `root`. */
export function smEnvironment(o: {
  root: string;
  channels: string[];
  hyperparameters: Record<string, string>;
  instanceType: string;
  hosts?: string[];
  currentHost?: string;
}): Record<string, string> {
  const l = localLayout(o.root);
  const hosts = o.hosts ?? ['algo-1'];
  const env: Record<string, string> = {
    SM_MODEL_DIR: l.model,
    SM_OUTPUT_DIR: l.output,
    SM_OUTPUT_DATA_DIR: `${l.output}/data`,
    SM_INPUT_DIR: `${o.root.replace(/\/+$/, '')}/input`,
    SM_INPUT_CONFIG_DIR: l.config,
    SM_CHANNELS: JSON.stringify(o.channels),
    SM_HPS: JSON.stringify(o.hyperparameters),
    SM_HOSTS: JSON.stringify(hosts),
    SM_CURRENT_HOST: o.currentHost ?? hosts[0],
    SM_NUM_GPUS: '0',
    SM_CURRENT_INSTANCE_TYPE: o.instanceType,
    SM_CHECKPOINT_DIR: l.checkpoints,
  };
  for (const c of o.channels) env[`SM_CHANNEL_${c.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] = l.data(c);
  for (const [k, v] of Object.entries(o.hyperparameters))
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) env[`SM_HP_${k.toUpperCase()}`] = v;
  return env;
}

export interface DeploySpec {
  endpoint: string;
  /** Name of this deployment's model and endpoint config (deploymentName). */
  name: string;
  image: string;
  role: string;
  instanceType: string;
  instanceCount: number;
  /** S3 URI of the model folder the container serves. */
  modelUri: string;
  environment: string;
  version: string;
  modelSha256: string;
  tags: Tag[];
}

/** CreateModel + CreateEndpointConfig of one deployment; every check before anything is created. */
export function buildDeployRequests(s: DeploySpec): { model: ModelRequest; config: EndpointConfigRequest } {
  const image = checkEcrImage(s.image, 'serving-image');
  const role = checkRoleArn(s.role, 'sagemaker-role');
  if (!/^ml\.[a-z0-9]+\.[a-z0-9]+$/.test(s.instanceType))
    throw new UserError(
      `endpoint-instance-type "${s.instanceType}" is not a SageMaker instance type (e.g. ml.m5.large)`,
    );
  if (!Number.isInteger(s.instanceCount) || s.instanceCount < 1)
    throw new UserError(`endpoint-instance-count must be at least 1, got ${s.instanceCount}`);
  if (!/^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$/.test(s.endpoint))
    throw new UserError(
      `endpoint-name "${s.endpoint}" must be 1-63 letters, digits and hyphens, starting with a letter or digit`,
    );
  const folder = s.modelUri.endsWith('/') ? s.modelUri : s.modelUri + '/';
  return {
    model: {
      ModelName: s.name,
      ExecutionRoleArn: role,
      PrimaryContainer: {
        Image: image,
        Environment: {
          MODEL_PIPELINE_MODEL_URI: folder,
          MODEL_PIPELINE_MODEL_ZIP: `${folder}model.zip`,
          MODEL_PIPELINE_MODEL_VERSION: s.version,
          MODEL_PIPELINE_MODEL_SHA256: s.modelSha256,
          MODEL_PIPELINE_ENVIRONMENT: s.environment,
        },
      },
      Tags: s.tags,
    },
    config: {
      EndpointConfigName: s.name,
      ProductionVariants: [
        {
          VariantName: 'primary',
          ModelName: s.name,
          InstanceType: s.instanceType,
          InitialInstanceCount: s.instanceCount,
        },
      ],
      Tags: s.tags,
    },
  };
}

/** Endpoint states that are still moving; anything else is where it settled. */
export function endpointSettled(status: string): boolean {
  return !['Creating', 'Updating', 'SystemUpdating', 'RollingBack', 'Deleting'].includes(status);
}

export type ModelApprovalStatus = 'Approved' | 'PendingManualApproval' | 'Rejected';
export type MirrorAction = 'created' | 'updated' | 'unchanged';

const META_ENV = 'model-pipeline:environment';
const META_ENVS = 'model-pipeline:environments';
const META_DEMOTED = 'model-pipeline:demoted-from';

/** The description a model folder's package carries: the mirror finds it by this on every promotion. */
export function modelPackageDescription(prefix: string): string {
  return `model-pipeline ${prefix}`.slice(0, 1024);
}

/**
 * A model package mirroring a promotion: one package version per model folder, whose metadata says the
 * environment it was last promoted to and every environment it reached; Approved once it reached
 * production. The store stays the source of truth: SageMaker tooling sees the same story.
 */
export function buildModelPackageRequest(o: {
  group: string;
  /** Serving image for the package's inference specification; none: a package without containers. */
  image?: string;
  modelUri: string;
  environment: string;
  version: string;
  prefix: string;
  modelSha256: string;
}): ModelPackageRequest {
  const folder = o.modelUri.endsWith('/') ? o.modelUri : o.modelUri + '/';
  return {
    ModelPackageGroupName: sagemakerName([o.group]),
    ModelPackageDescription: modelPackageDescription(o.prefix),
    ModelApprovalStatus: o.environment === 'production' ? 'Approved' : 'PendingManualApproval',
    CustomerMetadataProperties: {
      [META_ENV]: o.environment,
      [META_ENVS]: o.environment,
      'model-pipeline:version': o.version,
      'model-pipeline:prefix': o.prefix,
      'model-pipeline:model-uri': folder,
      'model-pipeline:model-sha256': o.modelSha256,
    },
    ...(o.image
      ? {
          InferenceSpecification: {
            Containers: [
              {
                Image: checkEcrImage(o.image, 'serving-image'),
                Environment: { MODEL_PIPELINE_MODEL_URI: folder },
              },
            ],
            SupportedContentTypes: ['application/json'],
            SupportedResponseMIMETypes: ['application/json'],
          },
        }
      : {}),
  };
}

/**
 * What an existing package of the same model folder needs after this promotion: the new environment
 * added to its list and made the current one, Approved once production was reached (never taken back);
 * undefined when it already says all that (a re-promotion changes nothing).
 */
export function modelPackageUpdate(
  existing: { approval?: string; metadata: Record<string, string> },
  req: ModelPackageRequest,
):
  | { ModelApprovalStatus: ModelApprovalStatus; CustomerMetadataProperties: Record<string, string> }
  | undefined {
  const env = req.CustomerMetadataProperties[META_ENV];
  const envs = (existing.metadata[META_ENVS] ?? '').split(',').filter(Boolean);
  if (!envs.includes(env)) envs.push(env);
  const approval: ModelApprovalStatus =
    existing.approval === 'Approved' || req.ModelApprovalStatus === 'Approved'
      ? 'Approved'
      : req.ModelApprovalStatus;
  const metadata: Record<string, string> = {
    ...existing.metadata,
    ...req.CustomerMetadataProperties,
    [META_ENVS]: envs.join(','),
  };
  // promoted again to the environment it was rolled back from: that rollback is over
  if (metadata[META_DEMOTED] === env) delete metadata[META_DEMOTED];
  const same =
    existing.approval === approval &&
    Object.keys(metadata).length === Object.keys(existing.metadata).length &&
    Object.entries(metadata).every(([k, v]) => existing.metadata[k] === v);
  return same ? undefined : { ModelApprovalStatus: approval, CustomerMetadataProperties: metadata };
}

/**
 * What the package of a model folder that demote rolled back out of `environment` needs: that environment
 * named in `model-pipeline:demoted-from`, and Rejected when it was production, so that tooling deploying the
 * group's latest Approved package does not bring the rolled-back model back. Undefined when it already says
 * so. (A promotion takes Rejected back only by reaching production again.)
 */
export function modelPackageDemotion(
  existing: { approval?: string; metadata: Record<string, string> },
  environment: string,
):
  | { ModelApprovalStatus: ModelApprovalStatus; CustomerMetadataProperties: Record<string, string> }
  | undefined {
  const approval = (
    environment === 'production' ? 'Rejected' : (existing.approval ?? 'PendingManualApproval')
  ) as ModelApprovalStatus;
  if (existing.approval === approval && existing.metadata[META_DEMOTED] === environment) return undefined;
  return {
    ModelApprovalStatus: approval,
    CustomerMetadataProperties: { ...existing.metadata, [META_DEMOTED]: environment },
  };
}
