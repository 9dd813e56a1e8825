import { defineOptions } from '../core/options';
import { AMI_VERSION_FILE_OPTION, AMI_VERSION_OPTION, ENVIRONMENT_OPTION } from './common-options';

/**
 * Settings of `train` (EC2 launch and SSH access). Shared between the EC2 helper and the train command:
 * edit with small additions, one row per option.
 */
export const TRAIN_OPTIONS = defineOptions([
  ENVIRONMENT_OPTION,
  AMI_VERSION_OPTION,
  AMI_VERSION_FILE_OPTION,
  {
    name: 'ami-id',
    description:
      'Training AMI id. Default: the newest available AMI of this account tagged `model-pipeline:ami-version` = the AMI version (as build-ami tags them) (or matching `ami-name-pattern`).',
    type: 'string',
    env: ['MODEL_PIPELINE_AMI_ID'],
  },
  {
    name: 'ami-name-pattern',
    description:
      'AMI name pattern (EC2 filter wildcards `*`, `?`; `{version}` is replaced by the AMI version) used when no AMI carries the `model-pipeline:ami-version` tag.',
    type: 'string',
    env: ['MODEL_PIPELINE_AMI_NAME_PATTERN'],
  },
  {
    name: 'instance-types',
    description:
      'EC2 instance types, tried in order; the next one is used only when AWS has no capacity for the previous.',
    type: 'list',
    default: 'g5.xlarge',
    env: ['MODEL_PIPELINE_INSTANCE_TYPES'],
  },
  {
    name: 'subnet-id',
    description: 'Subnet ids (comma separated), tried in order on capacity errors.',
    type: 'list',
    env: ['MODEL_PIPELINE_SUBNET_ID'],
  },
  {
    name: 'subnet-cidr',
    description: 'Find the subnet by its IPv4 CIDR block (e.g. `10.0.1.0/24`) when no subnet-id is given.',
    type: 'list',
    env: ['MODEL_PIPELINE_SUBNET_CIDR'],
  },
  {
    name: 'security-group-id',
    description: 'Security group ids for the training instance.',
    type: 'list',
    env: ['MODEL_PIPELINE_SECURITY_GROUP_ID'],
  },
  {
    name: 'security-group-name',
    description: 'Security group names (looked up in the subnet’s VPC) when no security-group-id is given.',
    type: 'list',
    env: ['MODEL_PIPELINE_SECURITY_GROUP_NAME'],
  },
  {
    name: 'ssh-cidr',
    description:
      "Who may reach port 22 of the training instance: `auto` (this runner's public address as a /32, from https://checkip.amazonaws.com) or CIDR blocks. The tool adds the rule to the instance's security group at launch (tagged with the instance) and removes it at teardown (also in the post step and `sweep`); the group must carry the tag `model-pipeline=true` for the IAM policy to allow it. Unset: the security group is left as it is.",
    type: 'list',
    env: ['MODEL_PIPELINE_SSH_CIDR'],
  },
  {
    name: 'spot',
    description: 'Request a spot instance; falls back to on-demand when spot has no capacity.',
    type: 'boolean',
    default: 'false',
    env: ['MODEL_PIPELINE_SPOT'],
  },
  {
    name: 'root-volume-gib',
    description: 'Size of the encrypted gp3 root volume in GiB.',
    type: 'integer',
    default: '200',
    env: ['MODEL_PIPELINE_ROOT_VOLUME_GIB'],
  },
  {
    name: 'max-runtime',
    description:
      'Longest life of the training instance (e.g. `6h`, `90m`, `3600s`): it powers itself off, and so terminates, after this even if CI dies.',
    type: 'string',
    default: '6h',
    env: ['MODEL_PIPELINE_MAX_RUNTIME'],
  },
  {
    name: 'key-name',
    description:
      'Existing EC2 key pair name to launch with (with ssh-private-key). Default: an ephemeral key pair created and deleted by the run.',
    type: 'string',
    env: ['MODEL_PIPELINE_KEY_NAME'],
  },
  {
    name: 'instance-profile',
    description: 'IAM instance profile (name or ARN) of the training instance.',
    type: 'string',
    env: ['MODEL_PIPELINE_INSTANCE_PROFILE'],
  },
  {
    name: 'ec2-endpoint',
    description: 'Custom EC2 endpoint URL (EC2-compatible clouds, tests).',
    type: 'string',
    env: ['MODEL_PIPELINE_EC2_ENDPOINT', 'AWS_ENDPOINT_URL_EC2', 'AWS_ENDPOINT_URL'],
  },
  {
    name: 'ssh-user',
    description: 'SSH user on the training instance.',
    type: 'string',
    default: 'ubuntu',
    env: ['MODEL_PIPELINE_SSH_USER'],
  },
  {
    name: 'ssh-port',
    description: 'SSH port on the training instance.',
    type: 'integer',
    default: '22',
    env: ['MODEL_PIPELINE_SSH_PORT'],
  },
  {
    name: 'ssh-host',
    description:
      'Host to SSH to instead of the instance’s address (a bastion-forwarded port, tests). Default: the instance’s public IP, or its private IP when it has no public one.',
    type: 'string',
    env: ['MODEL_PIPELINE_SSH_HOST'],
  },
  {
    name: 'ssh-host-key',
    description:
      'Pinned host key of the instance: a public key line (`ssh-ed25519 AAAA…`) or a `SHA256:` fingerprint. Default: read the fingerprints from the instance console output.',
    type: 'string',
    env: ['MODEL_PIPELINE_SSH_HOST_KEY'],
  },
  {
    name: 'ssh-private-key',
    description: 'Private key (PEM/OpenSSH text) for an existing key pair, instead of an ephemeral one.',
    type: 'string',
    secret: true,
    env: ['MODEL_PIPELINE_SSH_PRIVATE_KEY'],
  },
  // the training run itself (src/commands/train.ts)
  {
    name: 'train-command',
    description:
      'Command run in the copied repository on the instance; its exit code decides the step. It sees MODEL_PIPELINE_CONFIG, MODEL_PIPELINE_DATA, MODEL_PIPELINE_OUTPUT_DIR, MODEL_PIPELINE_MODEL_VERSION and MODEL_PIPELINE_MODEL_SHA.',
    type: 'string',
    default: 'make train',
    env: ['MODEL_PIPELINE_TRAIN_COMMAND'],
  },
  {
    name: 'train-timeout',
    description:
      'Longest the training command may run (e.g. `5h`, `45m`) before it is stopped and the run fails.',
    type: 'string',
    default: '5h',
    env: ['MODEL_PIPELINE_TRAIN_TIMEOUT'],
  },
  {
    name: 'boot-timeout',
    description: 'Longest wait for the instance to run and answer on SSH (e.g. `10m`).',
    type: 'string',
    default: '10m',
    env: ['MODEL_PIPELINE_BOOT_TIMEOUT'],
  },
  {
    name: 'data-key',
    description:
      'Store key of the training input (not under store-prefix), copied next to the code on the instance; `none` for no input data.',
    type: 'string',
    default: 'raw_source_data.zip',
    env: ['MODEL_PIPELINE_DATA_KEY'],
  },
  {
    name: 'metrics-file',
    description:
      'Benchmark results the training command writes (relative to output-dir), uploaded with the model when present; `none` for no metrics.',
    type: 'string',
    default: 'metrics.json',
    env: ['MODEL_PIPELINE_METRICS_FILE'],
  },
  {
    name: 'output-dir',
    description:
      'Folder, relative to the repository, where the training command leaves model.zip (and embeddings.zip).',
    type: 'string',
    default: '.',
    env: ['MODEL_PIPELINE_OUTPUT_DIR'],
  },
  {
    name: 'remote-dir',
    description:
      'Folder on the instance the repository is copied to (relative to the SSH user’s home, or absolute).',
    type: 'string',
    default: 'model-pipeline',
    env: ['MODEL_PIPELINE_REMOTE_DIR'],
  },
  {
    name: 'sync-excludes',
    description:
      'rsync exclude patterns for the repository copy, on top of `.git`, `node_modules` and `.model-store`.',
    type: 'list',
    env: ['MODEL_PIPELINE_SYNC_EXCLUDES'],
  },
  {
    name: 'transfer',
    description:
      '`runner`: data and artifacts pass through the CI runner. `instance`: the instance downloads the data and uploads model.zip/embeddings.zip to S3 itself (aws CLI on the AMI, instance profile with s3:GetObject/PutObject), for files of many GiB.',
    type: 'string',
    default: 'runner',
    choices: ['runner', 'instance'],
    env: ['MODEL_PIPELINE_TRANSFER'],
  },
  {
    name: 'instance-aws-command',
    description:
      'How the instance runs the aws CLI when transfer is `instance` (e.g. `aws --profile training`).',
    type: 'string',
    default: 'aws',
    env: ['MODEL_PIPELINE_INSTANCE_AWS_COMMAND'],
  },
  {
    name: 'report-dir',
    description:
      'Folder where train also writes `benchmark_results.xml` (JUnit) for CI test reports: CircleCI `store_test_results`, GitHub test-report actions. Empty: the report is only stored with the model.',
    type: 'string',
    default: '',
    env: ['MODEL_PIPELINE_REPORT_DIR'],
  },
]);
