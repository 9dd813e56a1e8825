# Training AMI for model-pipeline: a GPU image with drivers, Python and the repo's dependencies.
# Copy this folder to .packer/ in your repository and adjust provision.sh. `model-pipeline build-ami` passes
# ami_version, base_ami, region and instance_type, plus subnet_id / ec2_endpoint when set and packer-vars:
# a template of your own must declare each variable it is given.
# Written for Packer 1.6 and later; with Packer 1.10+ rename plugins.pkr.hcl.example to plugins.pkr.hcl.

variable "ami_version" {
  type        = string
  description = "Version of this image (from .packer/ami-version.txt); tagged and part of the AMI name."
}

variable "base_ami" {
  type        = string
  description = "Source AMI id, resolved by build-ami (latest AWS Deep Learning AMI, or pinned with base-ami)."
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type    = string
  default = "g4dn.xlarge"
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet of the builder instance; empty: the default VPC."
}

variable "security_group_id" {
  type        = string
  default     = ""
  description = "Security group of the builder (port 22 from your runners only); empty: Packer makes a temporary one."
}

variable "ssh_source_cidrs" {
  type        = list(string)
  default     = []
  description = "Who may reach port 22 of Packer's temporary security group: your runners' address as a /32 (build-ami passes ssh-cidr). Empty: Packer's default, the whole internet."
}

variable "ami_name_prefix" {
  type    = string
  default = "model-pipeline-training"
}

variable "ssh_username" {
  type    = string
  default = "ubuntu"
}

variable "max_build_minutes" {
  type        = number
  default     = 120
  description = "The builder powers itself off (and so terminates) after this long, whatever happens to CI."
}

variable "provision_script" {
  type        = string
  default     = ""
  description = "Provision script; empty: provision.sh beside this template."
}

variable "requirements_file" {
  type        = string
  default     = ""
  description = "Python requirements installed on the image; empty: requirements.txt beside this template."
}

# Overrides for private endpoints and tests (a local EC2 API and sshd); leave empty in real use.
variable "ec2_endpoint" {
  type    = string
  default = ""
}

variable "skip_aws_validation" {
  type    = bool
  default = false
}

variable "ssh_host" {
  type    = string
  default = ""
}

variable "ssh_port" {
  type    = number
  default = 22
}

variable "ssh_keypair_name" {
  type    = string
  default = ""
}

variable "ssh_private_key_file" {
  type    = string
  default = ""
}

locals {
  stamp        = formatdate("YYYYMMDDhhmmss", timestamp())
  expires      = timeadd(timestamp(), "${var.max_build_minutes}m")
  provision    = var.provision_script != "" ? var.provision_script : "${path.root}/provision.sh"
  requirements = var.requirements_file != "" ? var.requirements_file : "${path.root}/requirements.txt"
}

source "amazon-ebs" "training" {
  region        = var.region
  source_ami    = var.base_ami
  instance_type = var.instance_type
  subnet_id     = var.subnet_id

  security_group_id                     = var.security_group_id
  temporary_security_group_source_cidrs = var.ssh_source_cidrs

  # IMDSv2 for the builder needs Packer 1.7+ (amazon plugin): add to this block
  #   metadata_options { http_tokens = "required" }
  # (the packer 1.6 this template also supports has no such block); plugins.pkr.hcl.example says how.

  # encrypted AMIs: turn on EBS encryption by default in the account and region
  # (aws ec2 enable-ebs-encryption-by-default); the builder's volume, the AMI and its snapshots are then
  # encrypted with no intermediate copy. encrypt_boot makes one and must deregister it untagged, which the
  # IAM policy (docs/iam.md) does not allow.
  ami_name = "${var.ami_name_prefix}-${var.ami_version}-${local.stamp}"

  # a builder left behind by a killed CI job must not live on: it powers off (watchdog) and terminates
  shutdown_behavior = "terminate"
  run_tags = {
    "model-pipeline"             = "true"
    "model-pipeline:role"        = "ami-builder"
    "model-pipeline:ami-version" = var.ami_version
    "model-pipeline:expires-at"  = local.expires
    "Name"                       = "model-pipeline-ami-builder"
  }
  run_volume_tags = {
    "model-pipeline"      = "true"
    "model-pipeline:role" = "ami-builder"
  }
  # no "model-pipeline" tag here: Packer tags the AMI after creating it, and the IAM policy lets the role tag
  # an image after creation only while it is not yet marked; build-ami marks it (docs/iam.md)
  tags = {
    "model-pipeline:ami-version" = var.ami_version
    "Name"                       = "${var.ami_name_prefix}-${var.ami_version}"
  }
  snapshot_tags = {
    "model-pipeline:ami-version" = var.ami_version
  }

  ssh_username         = var.ssh_username
  ssh_timeout          = "20m"
  ssh_host             = var.ssh_host
  ssh_port             = var.ssh_port
  ssh_keypair_name     = var.ssh_keypair_name
  ssh_private_key_file = var.ssh_private_key_file

  custom_endpoint_ec2        = var.ec2_endpoint
  skip_credential_validation = var.skip_aws_validation
  skip_metadata_api_check    = var.skip_aws_validation
  skip_region_validation     = var.skip_aws_validation
}

build {
  sources = ["source.amazon-ebs.training"]

  provisioner "file" {
    source      = local.requirements
    destination = "/tmp/model-pipeline-requirements.txt"
  }

  provisioner "shell" {
    script  = local.provision
    timeout = "${var.max_build_minutes}m"
    # root without sudo where the login user already is root
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} $([ \"$(id -u)\" -eq 0 ] || echo sudo -E) {{ .Path }}"
    environment_vars = [
      "AMI_VERSION=${var.ami_version}",
      "WATCHDOG_MINUTES=${var.max_build_minutes}",
      "REQUIREMENTS=/tmp/model-pipeline-requirements.txt",
    ]
  }
}
