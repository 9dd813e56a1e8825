import { AMI_VERSION_FILE_OPTION, AMI_VERSION_OPTION, SHA_OPTION } from './common-options';
import { defineOption, defineOptions } from '../core/options';
import { DEFAULT_PACKER_VERSION } from '../core/packer';
import { BASE_REF_OPTION, DRY_RUN_OPTION, FORCE_OPTION } from './model-context';
import { TRAIN_OPTIONS } from './train-options';

type TrainSpec = (typeof TRAIN_OPTIONS)[number];

function shared<N extends TrainSpec['name']>(name: N): Extract<TrainSpec, { name: N }> {
  const spec = TRAIN_OPTIONS.find((o): o is Extract<TrainSpec, { name: N }> => o.name === name);
  if (!spec) throw new Error(`option ${name} is missing from train-options.ts`);
  return spec;
}

/** EC2 settings shared with train (declared once, in train-options.ts). */
export const SUBNET_ID_OPTION = shared('subnet-id');
export const EC2_ENDPOINT_OPTION = shared('ec2-endpoint');

export const PACKER_TEMPLATE_DIR_OPTION = defineOption({
  name: 'packer-template-dir',
  description:
    'Folder of the Packer template (`*.pkr.hcl`) build-ami runs; start from `templates/packer/` of model-pipeline.',
  type: 'string',
  default: '.packer',
  env: ['MODEL_PIPELINE_PACKER_TEMPLATE_DIR'],
});

export const BUILD_AMI_OPTIONS = defineOptions([
  // the commit build-ami compares with its base (shared options it reads; no model store, no config)
  SHA_OPTION,
  AMI_VERSION_OPTION,
  AMI_VERSION_FILE_OPTION,
  BASE_REF_OPTION,
  FORCE_OPTION,
  PACKER_TEMPLATE_DIR_OPTION,
  {
    name: 'base-ami',
    description:
      'Source AMI id to build from, pinned; default: the newest AMI matching `base-ami-name-pattern`.',
    type: 'string',
    env: ['MODEL_PIPELINE_BASE_AMI'],
  },
  {
    name: 'base-ami-name-pattern',
    description:
      'Name pattern (EC2 wildcards) of the source AMI when base-ami is not set; the newest match wins.',
    type: 'string',
    default: 'Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *',
    env: ['MODEL_PIPELINE_BASE_AMI_NAME_PATTERN'],
  },
  {
    name: 'base-ami-owner',
    description: 'Owners (account ids or `amazon`, `self`) the source AMI is looked up among.',
    type: 'list',
    default: 'amazon',
    env: ['MODEL_PIPELINE_BASE_AMI_OWNER'],
  },
  {
    name: 'packer-instance-type',
    description: 'Instance type of the Packer builder (the template variable `instance_type`).',
    type: 'string',
    default: 'g4dn.xlarge',
    env: ['MODEL_PIPELINE_PACKER_INSTANCE_TYPE'],
  },
  SUBNET_ID_OPTION,
  EC2_ENDPOINT_OPTION,
  {
    name: 'packer-vars',
    description:
      'Extra template variables, `name=value` (comma or newline separated); the template must declare each.',
    type: 'list',
    env: ['MODEL_PIPELINE_PACKER_VARS'],
  },
  {
    name: 'packer-ssh-cidr',
    description:
      "Addresses allowed to reach port 22 of Packer's temporary security group (the template variable `ssh_source_cidrs`): your runners' address as a /32, or a bastion's. Unset: the template's default, which lets Packer open port 22 to the whole internet.",
    type: 'list',
    env: ['MODEL_PIPELINE_PACKER_SSH_CIDR'],
  },
  {
    name: 'share-accounts',
    description: 'AWS account ids allowed to launch the new AMI (comma separated).',
    type: 'list',
    env: ['MODEL_PIPELINE_SHARE_ACCOUNTS'],
  },
  {
    name: 'copy-regions',
    description: 'Regions the new AMI is copied to, tagged alike (comma separated).',
    type: 'list',
    env: ['MODEL_PIPELINE_COPY_REGIONS'],
  },
  {
    name: 'packer-version',
    description: 'Packer release installed when no `packer` is on PATH.',
    type: 'string',
    default: DEFAULT_PACKER_VERSION,
    env: ['MODEL_PIPELINE_PACKER_VERSION'],
  },
  {
    name: 'packer-sha256',
    description:
      "sha256 of the packer release zip, pinned (strongest). Default: checked against the release's published SHA256SUMS.",
    type: 'string',
    env: ['MODEL_PIPELINE_PACKER_SHA256'],
  },
]);

export const PRUNE_AMIS_OPTIONS = defineOptions([
  AMI_VERSION_OPTION,
  AMI_VERSION_FILE_OPTION,
  EC2_ENDPOINT_OPTION,
  {
    name: 'keep',
    description: 'prune-amis: how many AMI versions below the current one stay.',
    type: 'integer',
    default: '2',
    env: ['MODEL_PIPELINE_KEEP'],
  },
  DRY_RUN_OPTION,
]);
