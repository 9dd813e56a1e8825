# The amazon plugin, installed by `packer init` (build-ami runs it). 1.3.0 and later tag the AMI and its
# snapshots in the CreateImage call (run_tags) and know metadata_options and
# temporary_security_group_source_public_ip; the major version is pinned so a 2.x cannot change that.
packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0, < 2.0.0"
    }
  }
}
