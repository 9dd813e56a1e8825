import { defineOption, defineOptions } from '../core/options';

/** Settings of the SageMaker engine: `train` on a training job, and `deploy` / `endpoint-status` / `undeploy`. */

export const TRAIN_ENGINE_OPTION = defineOption({
  name: 'train-engine',
  description:
    '`instance` (an EC2 instance, or a local process on the local backend) or `sagemaker` (a SageMaker training job; on the local backend, the local run of the same contract with /opt/ml folders and SM_* variables).',
  type: 'string',
  default: 'instance',
  choices: ['instance', 'sagemaker'],
  env: ['MODEL_PIPELINE_TRAIN_ENGINE'],
});

export const SAGEMAKER_ROLE_OPTION = defineOption({
  name: 'sagemaker-role',
  description:
    'ARN of the IAM role SageMaker runs training jobs and endpoints as (see docs/sagemaker.md for its policy).',
  type: 'string',
  env: ['MODEL_PIPELINE_SAGEMAKER_ROLE'],
});

export const SAGEMAKER_ENDPOINT_URL_OPTION = defineOption({
  name: 'sagemaker-endpoint-url',
  description: 'Custom SageMaker API endpoint URL (tests).',
  type: 'string',
  env: ['MODEL_PIPELINE_SAGEMAKER_ENDPOINT_URL', 'AWS_ENDPOINT_URL_SAGEMAKER'],
});

export const SAGEMAKER_POLL_OPTION = defineOption({
  name: 'sagemaker-poll',
  description: 'Time between status polls of a training job or endpoint (e.g. `15s`).',
  type: 'string',
  default: '15s',
  env: ['MODEL_PIPELINE_SAGEMAKER_POLL'],
});

export const SERVING_IMAGE_OPTION = defineOption({
  name: 'serving-image',
  description:
    'deploy: serving image in ECR; the container finds the model folder in `MODEL_PIPELINE_MODEL_URI` (and model.zip in `MODEL_PIPELINE_MODEL_ZIP`). promote and demote with sagemaker-registry: the image of the package’s inference specification (optional).',
  type: 'string',
  env: ['MODEL_PIPELINE_SERVING_IMAGE'],
});

/** The registry mirror of promote and demote: model folders as versions in a SageMaker model package group. */
export const REGISTRY_MIRROR_OPTIONS = defineOptions([
  {
    name: 'sagemaker-registry',
    description:
      'promote: also register the promoted model folder in a SageMaker model package group (one package version per folder; the environment in its metadata, Approved once in production). demote: the restored folder the same way, and the rolled-back one marked `model-pipeline:demoted-from` (Rejected when it left production). The store stays the source of truth: a failed mirror warns and the command still exits 0.',
    type: 'boolean',
    default: 'false',
    env: ['MODEL_PIPELINE_SAGEMAKER_REGISTRY'],
  },
  {
    name: 'model-package-group',
    description:
      'promote and demote with sagemaker-registry: the model package group. Default: the model name (`model` for a repository with one unnamed model).',
    type: 'string',
    env: ['MODEL_PIPELINE_MODEL_PACKAGE_GROUP'],
  },
  SERVING_IMAGE_OPTION,
  SAGEMAKER_ENDPOINT_URL_OPTION,
]);

export const SAGEMAKER_TRAIN_OPTIONS = defineOptions([
  TRAIN_ENGINE_OPTION,
  {
    name: 'sagemaker-image',
    description:
      'Training image of a SageMaker job, in ECR (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`); its entry runs the training command.',
    type: 'string',
    env: ['MODEL_PIPELINE_SAGEMAKER_IMAGE'],
  },
  SAGEMAKER_ROLE_OPTION,
  {
    name: 'sagemaker-instance-type',
    description: 'SageMaker instance type of the training job (e.g. `ml.g5.xlarge`).',
    type: 'string',
    default: 'ml.g5.xlarge',
    env: ['MODEL_PIPELINE_SAGEMAKER_INSTANCE_TYPE'],
  },
  {
    name: 'sagemaker-instance-count',
    description: 'Number of instances of the training job (more than 1: a distributed run across nodes).',
    type: 'integer',
    default: '1',
    env: ['MODEL_PIPELINE_SAGEMAKER_INSTANCE_COUNT'],
  },
  {
    name: 'sagemaker-volume-gib',
    description: 'Storage volume of each training instance, in GiB.',
    type: 'integer',
    default: '100',
    env: ['MODEL_PIPELINE_SAGEMAKER_VOLUME_GIB'],
  },
  {
    name: 'max-wait',
    description:
      'Managed spot (with `spot`): longest wait for capacity plus run time (e.g. `8h`), at least max-runtime. Default: max-runtime.',
    type: 'string',
    env: ['MODEL_PIPELINE_MAX_WAIT'],
  },
  {
    name: 'hyperparameters-table',
    description: 'Table of the model config whose keys are passed as the job’s hyperparameters.',
    type: 'string',
    default: 'hyperparameters',
    env: ['MODEL_PIPELINE_HYPERPARAMETERS_TABLE'],
  },
  SAGEMAKER_ENDPOINT_URL_OPTION,
  SAGEMAKER_POLL_OPTION,
  {
    name: 'sagemaker-logs',
    description:
      "Stream the training job's log (CloudWatch Logs, `/aws/sagemaker/TrainingJobs`) into the CI log while it runs; needs `logs:DescribeLogStreams` and `logs:GetLogEvents`.",
    type: 'boolean',
    default: 'true',
    env: ['MODEL_PIPELINE_SAGEMAKER_LOGS'],
  },
  {
    name: 'logs-endpoint-url',
    description: 'Custom CloudWatch Logs API endpoint URL (tests).',
    type: 'string',
    env: ['MODEL_PIPELINE_LOGS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_CLOUDWATCH_LOGS'],
  },
]);

export const DEPLOY_OPTIONS = defineOptions([
  SAGEMAKER_ROLE_OPTION,
  SAGEMAKER_ENDPOINT_URL_OPTION,
  SAGEMAKER_POLL_OPTION,
  SERVING_IMAGE_OPTION,
  {
    name: 'endpoint-name',
    description: 'SageMaker endpoint name. Default: `<model name>-<environment>`.',
    type: 'string',
    env: ['MODEL_PIPELINE_ENDPOINT_NAME'],
  },
  {
    name: 'endpoint-instance-type',
    description: 'deploy: instance type of the endpoint (e.g. `ml.m5.large`).',
    type: 'string',
    default: 'ml.m5.large',
    env: ['MODEL_PIPELINE_ENDPOINT_INSTANCE_TYPE'],
  },
  {
    name: 'endpoint-instance-count',
    description: 'deploy: number of endpoint instances.',
    type: 'integer',
    default: '1',
    env: ['MODEL_PIPELINE_ENDPOINT_INSTANCE_COUNT'],
  },
  {
    name: 'deploy-timeout',
    description: 'deploy / undeploy: longest wait for the endpoint to be InService (or deleted).',
    type: 'string',
    default: '30m',
    env: ['MODEL_PIPELINE_DEPLOY_TIMEOUT'],
  },
]);
