import { defineOption, defineOptions } from '../core/options';
import { DEFAULT_REGION } from '../core/region';

export const CONFIG_PATH_OPTION = defineOption({
  name: 'config-path',
  description:
    'Model config (TOML with a semver `version`). A glob such as `models/*/search-config.toml` selects several models.',
  type: 'string',
  default: 'search-config.toml',
  env: ['MODEL_PIPELINE_CONFIG_PATH'],
  cliAliases: ['config'],
});

export const SETTINGS_FILE_OPTION = defineOption({
  name: 'settings-file',
  description:
    'Optional dotenv-style file (e.g. `config/dev.env`) with MODEL_PIPELINE_* settings; inputs and environment win over it.',
  type: 'string',
  env: ['MODEL_PIPELINE_SETTINGS_FILE'],
});

export const WORKING_DIRECTORY_OPTION = defineOption({
  name: 'working-directory',
  description: 'Repository root the paths are relative to.',
  type: 'string',
  default: '.',
  env: ['MODEL_PIPELINE_WORKING_DIRECTORY'],
});

export const BACKEND_OPTION = defineOption({
  name: 'backend',
  description:
    '`aws` (S3 + EC2), `local` (a folder as the store, a local process as the instance), `sagemaker` (S3 + SageMaker training jobs: aws with train-engine sagemaker) or `auto` (aws when a bucket is set).',
  type: 'string',
  default: 'auto',
  choices: ['auto', 'aws', 'local', 'sagemaker'],
  env: ['MODEL_PIPELINE_BACKEND'],
});

export const BUCKET_OPTION = defineOption({
  name: 'bucket',
  description: 'S3 bucket of the model store.',
  type: 'string',
  env: ['MODEL_PIPELINE_BUCKET'],
});

export const REGION_OPTION = defineOption({
  name: 'region',
  description: 'AWS region.',
  type: 'string',
  default: DEFAULT_REGION,
  env: ['MODEL_PIPELINE_REGION', 'AWS_REGION', 'AWS_DEFAULT_REGION'],
});

export const S3_ENDPOINT_OPTION = defineOption({
  name: 's3-endpoint',
  description: 'Custom S3 endpoint URL (S3-compatible stores, tests); implies path-style addressing.',
  type: 'string',
  env: ['MODEL_PIPELINE_S3_ENDPOINT', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'],
});

export const S3_CHECKSUMS_OPTION = defineOption({
  name: 's3-checksums',
  description:
    'Send a CRC32 with every uploaded file and part, which S3 verifies; turn off only for S3-compatible stores that reject x-amz-checksum headers.',
  type: 'boolean',
  default: 'true',
  env: ['MODEL_PIPELINE_S3_CHECKSUMS'],
});

export const STORE_PREFIX_OPTION = defineOption({
  name: 'store-prefix',
  description: 'Key prefix under which model folders `<version>-<sha7>/` live in the store.',
  type: 'string',
  default: '',
  env: ['MODEL_PIPELINE_STORE_PREFIX'],
});

export const LOCAL_STORE_OPTION = defineOption({
  name: 'local-store',
  description: 'Folder used as the model store by the local backend.',
  type: 'string',
  default: '.model-store',
  env: ['MODEL_PIPELINE_LOCAL_STORE'],
});

export const SHA_OPTION = defineOption({
  name: 'sha',
  description: 'Commit the model is built from. Default: GITHUB_SHA / CIRCLE_SHA1, else git HEAD.',
  type: 'string',
  env: ['MODEL_PIPELINE_SHA'],
});

/**
 * Every shared option, in the order help, the README and the orb list them. A command reads the ones it
 * declares in its own option list (the store, config-path, sha); EVERYWHERE_OPTIONS every command reads.
 */
export const COMMON_OPTIONS = defineOptions([
  CONFIG_PATH_OPTION,
  SETTINGS_FILE_OPTION,
  WORKING_DIRECTORY_OPTION,
  BACKEND_OPTION,
  BUCKET_OPTION,
  REGION_OPTION,
  S3_ENDPOINT_OPTION,
  S3_CHECKSUMS_OPTION,
  STORE_PREFIX_OPTION,
  LOCAL_STORE_OPTION,
  SHA_OPTION,
]);

/** Read by every command: where the settings and the repository are, and the region (EC2, S3, SageMaker). */
export const EVERYWHERE_OPTIONS = defineOptions([
  SETTINGS_FILE_OPTION,
  WORKING_DIRECTORY_OPTION,
  REGION_OPTION,
]);

/** The model store: a command that reads or writes it declares these in its options. */
export const STORE_OPTIONS = defineOptions([
  BACKEND_OPTION,
  BUCKET_OPTION,
  STORE_PREFIX_OPTION,
  LOCAL_STORE_OPTION,
  S3_ENDPOINT_OPTION,
  S3_CHECKSUMS_OPTION,
]);

/** The repository's model of this commit: config-path, and the commit (sha) it is built from. */
export const REPO_OPTIONS = defineOptions([CONFIG_PATH_OPTION, SHA_OPTION]);

/**
 * The environment read when none is named, by the commands that only look at one (benchmark-report compares
 * with its model, endpoint-status and undeploy name its endpoint): the one users get.
 */
export const DEFAULT_READ_ENVIRONMENT = 'production';

/** Read by the commands that work on an environment (train, promote, demote, status, fetch-model, ...). */
export const ENVIRONMENT_OPTION = defineOption({
  name: 'environment',
  description:
    'Target environment: development, staging or production. ' +
    `benchmark-report, endpoint-status and undeploy take ${DEFAULT_READ_ENVIRONMENT} when it is not set.`,
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
