/** Where to launch, as the user said it (ids win over lookups), and what the cloud resolved it to. */
export interface LaunchTargetSpec {
  amiId?: string;
  /** Matched against the `ami-version` tag of images owned by this account. */
  amiVersion?: string;
  /** Image name filter (`*`, `?`), `{version}` replaced by amiVersion; used when no image has the tag. */
  amiNamePattern?: string;
  subnetIds?: string[];
  subnetCidrs?: string[];
  securityGroupIds?: string[];
  securityGroupNames?: string[];
}

export interface ResolvedImage {
  imageId: string;
  name?: string;
  /** Device name of the root volume (e.g. /dev/sda1), needed to size and encrypt it. */
  rootDeviceName?: string;
  createdAt?: string;
  /** How it was found, for the log. */
  via: string;
}

export interface ResolvedLaunchTargets {
  image: ResolvedImage;
  /** Empty: the cloud picks the default subnet. */
  subnetIds: string[];
  vpcId?: string;
  /** Empty: the VPC's default security group. */
  securityGroupIds: string[];
}
