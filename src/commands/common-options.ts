import { defineOption, defineOptions } from '../core/options';
import { DEFAULT_REGION } from '../core/region';

/** Settings every command reads. Command-specific ones live beside each command. */
export const COMMON_OPTIONS = defineOptions([
  {
    name: 'config-path',
    description:
      'Model config (TOML with a semver `version`). A glob such as `models/*/search-config.toml` selects several models.',
    type: 'string',
    default: 'search-config.toml',
    env: ['MODEL_PIPELINE_CONFIG_PATH'],
    cliAliases: ['config'],
  },
  {
    name: 'settings-file',
    description:
      'Optional dotenv-style file (e.g. `config/dev.env`) with MODEL_PIPELINE_* settings; inputs and environment win over it.',
    type: 'string',
    env: ['MODEL_PIPELINE_SETTINGS_FILE'],
  },
  {
    name: 'working-directory',
    description: 'Repository root the paths are relative to.',
    type: 'string',
    default: '.',
    env: ['MODEL_PIPELINE_WORKING_DIRECTORY'],
  },
  {
    name: 'backend',
    description:
      '`aws` (S3 + EC2), `local` (a folder as the store, a local process as the instance), `sagemaker` (S3 + SageMaker training jobs: aws with train-engine sagemaker) or `auto` (aws when a bucket is set).',
    type: 'string',
    default: 'auto',
    choices: ['auto', 'aws', 'local', 'sagemaker'],
    env: ['MODEL_PIPELINE_BACKEND'],
  },
  {
    name: 'bucket',
    description: 'S3 bucket of the model store.',
    type: 'string',
    env: ['MODEL_PIPELINE_BUCKET'],
  },
  {
    name: 'region',
    description: 'AWS region.',
    type: 'string',
    default: DEFAULT_REGION,
    env: ['MODEL_PIPELINE_REGION', 'AWS_REGION', 'AWS_DEFAULT_REGION'],
  },
  {
    name: 's3-endpoint',
    description: 'Custom S3 endpoint URL (S3-compatible stores, tests); implies path-style addressing.',
    type: 'string',
    env: ['MODEL_PIPELINE_S3_ENDPOINT', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'],
  },
  {
    name: 's3-checksums',
    description:
      'Send a CRC32 with every uploaded file and part, which S3 verifies; turn off only for S3-compatible stores that reject x-amz-checksum headers.',
    type: 'boolean',
    default: 'true',
    env: ['MODEL_PIPELINE_S3_CHECKSUMS'],
  },
  {
    name: 'store-prefix',
    description: 'Key prefix under which model folders `<version>-<sha7>/` live in the store.',
    type: 'string',
    default: '',
    env: ['MODEL_PIPELINE_STORE_PREFIX'],
  },
  {
    name: 'local-store',
    description: 'Folder used as the model store by the local backend.',
    type: 'string',
    default: '.model-store',
    env: ['MODEL_PIPELINE_LOCAL_STORE'],
  },
  {
    name: 'sha',
    description: 'Commit the model is built from. Default: GITHUB_SHA / CIRCLE_SHA1, else git HEAD.',
    type: 'string',
    env: ['MODEL_PIPELINE_SHA'],
  },
]);

/** Read by the commands that work on an environment (train, promote, demote, status, fetch-model, ...). */
export const ENVIRONMENT_OPTION = defineOption({
  name: 'environment',
  description: 'Target environment: development, staging or production.',
  type: 'string',
  choices: ['development', 'staging', 'production'],
  env: ['MODEL_PIPELINE_ENVIRONMENT'],
});

/** Read by build-ami, prune-amis and train. */
export const AMI_VERSION_OPTION = defineOption({
  name: 'ami-version',
  description: 'Training AMI version; default: the content of `ami-version-file`.',
  type: 'string',
  env: ['MODEL_PIPELINE_AMI_VERSION'],
});
export const AMI_VERSION_FILE_OPTION = defineOption({
  name: 'ami-version-file',
  description: 'File holding the AMI version.',
  type: 'string',
  default: '.packer/ami-version.txt',
  env: ['MODEL_PIPELINE_AMI_VERSION_FILE'],
});

type CommonName = (typeof COMMON_OPTIONS)[number]['name'];

/**
 * Shared options only some commands read: the model store (build-ami and prune-amis have none) and the
 * repository's model config (commands that work on a stored model by prefix, alias or environment do not
 * read it). The rest (settings-file, working-directory, region) every command reads.
 */
export const COMMON_GROUPS = {
  store: ['backend', 'bucket', 'store-prefix', 'local-store', 's3-endpoint', 's3-checksums'],
  repo: ['config-path', 'sha'],
} as const satisfies Record<string, readonly CommonName[]>;

export type CommonGroup = keyof typeof COMMON_GROUPS;
