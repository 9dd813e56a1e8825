# Training AMI for model-pipeline: a GPU image with drivers, Python and the repo's dependencies.
# Copy this folder to .packer/ in your repository and adjust provision.sh. `model-pipeline build-ami` passes
# ami_version, base_ami, region, instance_type, image_tags, root_device_name and root_volume_size, plus
# subnet_id / ec2_endpoint / ssh_source_cidrs when set and packer-vars: a template of your own must declare each
# variable it is given.
# Written for the Packer build-ami installs (packer-version, 1.13.1) with the amazon plugin pinned in
# plugins.pkr.hcl: it tags the AMI and its snapshots in the CreateImage call (run_tags), which the IAM policy
# requires (docs/iam.md), and knows metadata_options. Packer 1.6 cannot read this template.

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

variable "image_tags" {
  type        = map(string)
  default     = {}
  description = "Tags build-ami puts on the builder, and so on the AMI and its snapshots when they are created (the marker, version, git sha, base AMI); the IAM policy lets no one tag them later."
}

variable "root_device_name" {
  type        = string
  default     = "/dev/sda1"
  description = "Root device of base_ami (build-ami passes it): the builder's root volume is encrypted, and so is the AMI's snapshot."
}

variable "root_volume_size" {
  type        = number
  default     = 0
  description = "Root volume size in GiB; build-ami passes base_ami's (set a larger one in packer-vars). 0: the snapshot's size."
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
  # no CIDRs given: port 22 of Packer's temporary group opens to this runner's public address, not 0.0.0.0/0
  temporary_security_group_source_public_ip = length(var.ssh_source_cidrs) == 0

  # IMDSv2 only on the builder (no token-less metadata requests from provisioning code)
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  # encrypted root volume (account default key): the AMI's snapshot is encrypted in CreateImage itself.
  # Not encrypt_boot: that copies an intermediate AMI and deregisters it untagged, which the IAM policy
  # (docs/iam.md) does not allow.
  launch_block_device_mappings {
    device_name           = var.root_device_name
    volume_size           = var.root_volume_size
    encrypted             = true
    delete_on_termination = true
  }

  ami_name = "${var.ami_name_prefix}-${var.ami_version}-${local.stamp}"

  # a builder left behind by a killed CI job must not live on: it powers off (watchdog) and terminates
  shutdown_behavior = "terminate"
  # run_tags go on the builder instance and, in the CreateImage call, on the AMI and its snapshots. No `tags`
  # or `snapshot_tags`: Packer applies those after creation (CreateTags), which the IAM policy refuses.
  run_tags = merge(var.image_tags, {
    "model-pipeline"             = "true"
    "model-pipeline:role"        = "ami-builder"
    "model-pipeline:ami-version" = var.ami_version
    "model-pipeline:expires-at"  = local.expires
    "Name"                       = "${var.ami_name_prefix}-${var.ami_version}"
  })
  run_volume_tags = {
    "model-pipeline"      = "true"
    "model-pipeline:role" = "ami-builder"
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
