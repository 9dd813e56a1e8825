import { UserError } from '../../src/core/errors';
import {
  buildTrainingJobRequest,
  checkEcrImage,
  checkRoleArn,
  deploymentName,
  endpointName,
  hyperparametersFrom,
  runTags,
  sagemakerKeys,
  smEnvironment,
  statusTransition,
  trainingJobName,
  type TrainingJobSpec,
  buildModelPackageRequest as mirrorRequest,
  modelPackageDemotion,
  modelPackageUpdate,
} from '../../src/core/sagemaker';

const IMAGE = '123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.2';
const ROLE = 'arn:aws:iam::123456789012:role/model-pipeline-sagemaker';

function spec(over: Partial<TrainingJobSpec> = {}): TrainingJobSpec {
  return {
    jobName: 'mp-1-0-0-abc1234-ff00',
    image: IMAGE,
    role: ROLE,
    instanceType: 'ml.g5.xlarge',
    instanceCount: 1,
    volumeGiB: 100,
    spot: false,
    maxRuntimeSeconds: 3600,
    hyperparameters: { epochs: '3' },
    dataUri: 's3://b/data/train.zip',
    sourceUri: 's3://b/sagemaker/jobs/j/source.tar.gz',
    checkpointUri: 's3://b/sagemaker/checkpoints/1.0.0-abc1234/',
    outputUri: 's3://b/sagemaker/jobs/j/output/',
    environment: { MODEL_PIPELINE_CONFIG: 'search-config.toml' },
    tags: runTags({ modelPrefix: '1.0.0-abc1234/', runUrl: 'https://ci/run/7' }),
    ...over,
  };
}

describe('checkEcrImage', () => {
  it.each([
    [IMAGE],
    ['123456789012.dkr.ecr.eu-west-2.amazonaws.com/team/train'],
    ['123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/train:latest'],
    [`123456789012.dkr.ecr.us-east-1.amazonaws.com/train@sha256:${'a'.repeat(64)}`],
  ])('accepts %s', (image) => expect(checkEcrImage(image, 'sagemaker-image')).toBe(image));

  it.each([
    ['train:1', 'not an ECR image URI'],
    ['docker.io/library/python:3.12', 'not an ECR image URI'],
    ['123.dkr.ecr.us-east-1.amazonaws.com/train', 'not an ECR image URI'],
    ['123456789012.dkr.ecr.us-east-1.amazonaws.com/', 'not an ECR image URI'],
    ['', 'is required'],
  ])('refuses %j (%s)', (image, message) => {
    expect(() => checkEcrImage(image, 'sagemaker-image')).toThrow(UserError);
    expect(() => checkEcrImage(image, 'sagemaker-image')).toThrow(message);
  });
});

describe('checkRoleArn', () => {
  it('accepts a role ARN, with a path', () => {
    expect(checkRoleArn('arn:aws:iam::123456789012:role/svc/sm', 'sagemaker-role')).toBe(
      'arn:aws:iam::123456789012:role/svc/sm',
    );
  });
  it.each([
    [undefined, 'sagemaker-role is required'],
    ['my-role', 'is not an IAM role ARN'],
    ['arn:aws:iam::123456789012:user/me', 'is not an IAM role ARN'],
  ])('refuses %j', (role, message) => expect(() => checkRoleArn(role, 'sagemaker-role')).toThrow(message));
});

describe('buildTrainingJobRequest', () => {
  it('builds the request from the spec', () => {
    const r = buildTrainingJobRequest(spec());
    expect(r).toEqual({
      TrainingJobName: 'mp-1-0-0-abc1234-ff00',
      RoleArn: ROLE,
      AlgorithmSpecification: { TrainingImage: IMAGE, TrainingInputMode: 'File' },
      HyperParameters: { epochs: '3', sagemaker_submit_directory: 's3://b/sagemaker/jobs/j/source.tar.gz' },
      Environment: {
        MODEL_PIPELINE_CONFIG: 'search-config.toml',
        MODEL_PIPELINE_SOURCE_URI: 's3://b/sagemaker/jobs/j/source.tar.gz',
      },
      InputDataConfig: [
        {
          ChannelName: 'training',
          DataSource: {
            S3DataSource: {
              S3DataType: 'S3Prefix',
              S3Uri: 's3://b/data/train.zip',
              S3DataDistributionType: 'FullyReplicated',
            },
          },
          InputMode: 'File',
        },
      ],
      OutputDataConfig: { S3OutputPath: 's3://b/sagemaker/jobs/j/output/' },
      ResourceConfig: { InstanceType: 'ml.g5.xlarge', InstanceCount: 1, VolumeSizeInGB: 100 },
      StoppingCondition: { MaxRuntimeInSeconds: 3600 },
      EnableManagedSpotTraining: false,
      CheckpointConfig: {
        S3Uri: 's3://b/sagemaker/checkpoints/1.0.0-abc1234/',
        LocalPath: '/opt/ml/checkpoints',
      },
      Tags: [
        { Key: 'model-pipeline:model-prefix', Value: '1.0.0-abc1234/' },
        { Key: 'model-pipeline:run', Value: 'https://ci/run/7' },
      ],
    });
  });

  it.each<
    [string, Partial<TrainingJobSpec>, (r: ReturnType<typeof buildTrainingJobRequest>) => unknown, unknown]
  >([
    ['instance count 4 runs on 4 nodes', { instanceCount: 4 }, (r) => r.ResourceConfig.InstanceCount, 4],
    ['volume size', { volumeGiB: 500 }, (r) => r.ResourceConfig.VolumeSizeInGB, 500],
    [
      'spot with max-wait',
      { spot: true, maxWaitSeconds: 7200 },
      (r) => [r.EnableManagedSpotTraining, r.StoppingCondition],
      [true, { MaxRuntimeInSeconds: 3600, MaxWaitTimeInSeconds: 7200 }],
    ],
    [
      'spot without max-wait waits no longer than max-runtime',
      { spot: true },
      (r) => r.StoppingCondition,
      { MaxRuntimeInSeconds: 3600, MaxWaitTimeInSeconds: 3600 },
    ],
    ['no data key, no channel', { dataUri: undefined }, (r) => r.InputDataConfig, []],
    [
      'no checkpoint prefix, no checkpoint config',
      { checkpointUri: undefined },
      (r) => r.CheckpointConfig,
      undefined,
    ],
  ])('%s', (_title, over, pick, expected) => {
    expect(pick(buildTrainingJobRequest(spec(over)))).toEqual(expected);
  });

  it.each<[string, Partial<TrainingJobSpec>, string]>([
    ['no role', { role: '' }, 'sagemaker-role is required'],
    ['image without registry', { image: 'train:1' }, 'is not an ECR image URI'],
    ['instance count 0', { instanceCount: 0 }, 'sagemaker-instance-count must be at least 1, got 0'],
    ['EC2 instance type', { instanceType: 'g5.xlarge' }, 'is not a SageMaker instance type'],
    ['volume 0', { volumeGiB: 0 }, 'sagemaker-volume-gib must be at least 1'],
    ['max-wait below max-runtime', { spot: true, maxWaitSeconds: 60 }, 'must be at least max-runtime'],
    ['max-wait without spot', { maxWaitSeconds: 7200 }, 'applies to managed spot only'],
  ])('refuses %s', (_title, over, message) => {
    expect(() => buildTrainingJobRequest(spec(over))).toThrow(UserError);
    expect(() => buildTrainingJobRequest(spec(over))).toThrow(message);
  });
});

describe('names', () => {
  it.each([
    [trainingJobName('1.0.0-abc1234/', 'ff00'), 'mp-1-0-0-abc1234-ff00'],
    [trainingJobName('ranker/1.0.0-abc1234/', '0a0b'), 'mp-ranker-1-0-0-abc1234-0a0b'],
    [endpointName('ranker', 'production'), 'ranker-production'],
    [endpointName('my_model.v2', 'staging'), 'my-model-v2-staging'],
    [deploymentName('ranker-production', '1.2.3', '20261130t0300'), 'ranker-production-1-2-3-20261130t0300'],
  ])('%s', (got, expected) => expect(got).toBe(expected));

  it('stays within 63 characters and keeps the suffix', () => {
    const name = trainingJobName(`${'x'.repeat(100)}/1.0.0-abc1234/`, 'beef');
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^[A-Za-z0-9](-?[A-Za-z0-9])*-beef$/);
  });
});

describe('hyperparametersFrom', () => {
  it.each<[Record<string, unknown>, Record<string, string>]>([
    [{ version: '1.0.0' }, {}],
    [
      { hyperparameters: { epochs: 3, lr: 0.01, name: 'x', on: true } },
      { epochs: '3', lr: '0.01', name: 'x', on: 'true' },
    ],
    [{ hyperparameters: { layers: [64, 32] } }, { layers: '[64,32]' }],
  ])('%j', (values, expected) => expect(hyperparametersFrom(values, 'hyperparameters')).toEqual(expected));

  it('refuses a value that is not a table', () => {
    expect(() => hyperparametersFrom({ hyperparameters: 3 }, 'hyperparameters')).toThrow('must be a table');
  });
});

describe('sagemakerKeys', () => {
  it.each([
    ['', '1.0.0-abc1234/', 'sagemaker/checkpoints/1.0.0-abc1234/', 'sagemaker/jobs/j/source.tar.gz'],
    [
      'models/',
      'ranker/1.0.0-abc1234/',
      'models/sagemaker/checkpoints/ranker/1.0.0-abc1234/',
      'models/sagemaker/jobs/j/source.tar.gz',
    ],
  ])('root %j, folder %s', (root, folder, checkpoints, source) => {
    const k = sagemakerKeys(root, folder, 'j');
    expect(k.checkpoints).toBe(checkpoints);
    expect(k.source).toBe(source);
  });
});

describe('statusTransition', () => {
  it('reports each change once', () => {
    const seen = [
      { name: 'j', status: 'InProgress', secondaryStatus: 'Starting' },
      { name: 'j', status: 'InProgress', secondaryStatus: 'Starting' },
      { name: 'j', status: 'InProgress', secondaryStatus: 'Training' },
      { name: 'j', status: 'Failed', secondaryStatus: 'Failed', failureReason: 'AlgorithmError: exit 1' },
    ];
    const lines: string[] = [];
    let prev: (typeof seen)[number] | undefined;
    for (const s of seen) {
      const line = statusTransition(prev, s);
      if (line) lines.push(line);
      prev = s;
    }
    expect(lines).toEqual([
      'training job j: InProgress (Starting)',
      'training job j: Starting -> InProgress (Training)',
      'training job j: Training -> Failed: AlgorithmError: exit 1',
    ]);
  });
});

describe('smEnvironment', () => {
  it('sets the SM_* variables of the training toolkit', () => {
    const env = smEnvironment({
      root: '/tmp/r',
      channels: ['training'],
      hyperparameters: { epochs: '3' },
      instanceType: 'ml.m5.large',
    });
    expect(env).toMatchObject({
      SM_MODEL_DIR: '/tmp/r/model',
      SM_CHANNEL_TRAINING: '/tmp/r/input/data/training',
      SM_CHANNELS: '["training"]',
      SM_HPS: '{"epochs":"3"}',
      SM_HP_EPOCHS: '3',
      SM_HOSTS: '["algo-1"]',
      SM_CURRENT_HOST: 'algo-1',
      SM_OUTPUT_DATA_DIR: '/tmp/r/output/data',
      SM_CHECKPOINT_DIR: '/tmp/r/checkpoints',
    });
  });
});

describe('the registry mirror', () => {
  const req = (environment: string) =>
    mirrorRequest({
      group: 'ranker',
      modelUri: 's3://b/ranker/1.0.0-abc1234',
      environment,
      version: '1.0.0',
      prefix: 'ranker/1.0.0-abc1234/',
      modelSha256: 'f'.repeat(64),
    });
  const apply = (
    p: { approval: string; metadata: Record<string, string> },
    u: ReturnType<typeof modelPackageUpdate>,
  ) => (u ? { approval: u.ModelApprovalStatus, metadata: u.CustomerMetadataProperties } : p);

  it('adds each environment once, approves at production and never takes the approval back', () => {
    const dev = req('development');
    expect(dev.InferenceSpecification).toBeUndefined(); // no serving-image: a package without containers
    expect(dev.ModelApprovalStatus).toBe('PendingManualApproval');
    let p = { approval: dev.ModelApprovalStatus as string, metadata: dev.CustomerMetadataProperties };
    expect(modelPackageUpdate(p, req('development'))).toBeUndefined();
    p = apply(p, modelPackageUpdate(p, req('staging')));
    p = apply(p, modelPackageUpdate(p, req('production')));
    expect(p.approval).toBe('Approved');
    expect(p.metadata['model-pipeline:environments']).toBe('development,staging,production');
    // promoted to staging again later (a rollback of staging): current environment moves, approval stays
    p = apply(p, modelPackageUpdate(p, req('staging')));
    expect(p).toMatchObject({
      approval: 'Approved',
      metadata: {
        'model-pipeline:environment': 'staging',
        'model-pipeline:environments': 'development,staging,production',
      },
    });
    expect(modelPackageUpdate(p, req('staging'))).toBeUndefined();
  });

  it('a demotion names the environment rolled back from, rejects out of production, and a new promotion there ends it', () => {
    const prod = req('production');
    let p = { approval: prod.ModelApprovalStatus as string, metadata: prod.CustomerMetadataProperties };
    const d = modelPackageDemotion(p, 'production');
    expect(d?.ModelApprovalStatus).toBe('Rejected');
    expect(d?.CustomerMetadataProperties['model-pipeline:demoted-from']).toBe('production');
    expect(d?.CustomerMetadataProperties['model-pipeline:model-sha256']).toBe('f'.repeat(64)); // kept
    p = { approval: d!.ModelApprovalStatus, metadata: d!.CustomerMetadataProperties };
    expect(modelPackageDemotion(p, 'production')).toBeUndefined(); // said once
    // promoted to production again: Approved, and the rollback mark is gone
    p = apply(p, modelPackageUpdate(p, req('production')));
    expect(p.approval).toBe('Approved');
    expect(p.metadata['model-pipeline:demoted-from']).toBeUndefined();
    // out of staging: marked, approval left as it was
    const s = modelPackageDemotion({ approval: 'PendingManualApproval', metadata: {} }, 'staging');
    expect(s).toEqual({
      ModelApprovalStatus: 'PendingManualApproval',
      CustomerMetadataProperties: { 'model-pipeline:demoted-from': 'staging' },
    });
  });
});
