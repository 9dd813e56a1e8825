import {
  DescribeImagesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  type EC2Client,
  type Filter,
  type Image,
  type SecurityGroup,
  type Subnet,
} from '@aws-sdk/client-ec2';
import { UserError } from '../../core/errors';
import type { LaunchTargetSpec, ResolvedImage, ResolvedLaunchTargets } from '../../core/launch-targets';
import { describeAwsError } from './errors';
import { TAG_AMI_VERSION } from '../../core/ami-lifecycle';

export type { LaunchTargetSpec, ResolvedImage, ResolvedLaunchTargets };

/** The tag build-ami writes on the AMIs it makes; train finds its image by it. */
export const AMI_VERSION_TAG = TAG_AMI_VERSION;

function errorCode(err: unknown): string {
  const e = err as { name?: string; Code?: string };
  return e?.Code ?? e?.name ?? '';
}

function imageOf(img: Image, via: string): ResolvedImage {
  return {
    imageId: img.ImageId!,
    name: img.Name,
    rootDeviceName: img.RootDeviceName,
    createdAt: img.CreationDate,
    via,
  };
}

async function describeImages(
  client: EC2Client,
  input: ConstructorParameters<typeof DescribeImagesCommand>[0],
) {
  const images: Image[] = [];
  let NextToken: string | undefined;
  do {
    const out = await client.send(new DescribeImagesCommand({ ...input, NextToken }));
    images.push(...(out.Images ?? []));
    NextToken = out.NextToken;
  } while (NextToken);
  return images;
}

function newest(images: Image[]): Image | undefined {
  return [...images].sort(
    (a, b) =>
      (Date.parse(b.CreationDate ?? '') || 0) - (Date.parse(a.CreationDate ?? '') || 0) ||
      (b.ImageId ?? '').localeCompare(a.ImageId ?? ''),
  )[0];
}

/** One image by id, checked to exist and be available, so a typo fails before anything is launched. */
export async function describeImage(client: EC2Client, imageId: string): Promise<ResolvedImage> {
  let images: Image[];
  try {
    images = await describeImages(client, { ImageIds: [imageId] });
  } catch (err) {
    if (/^InvalidAMIID\./.test(errorCode(err)))
      throw new UserError(`AMI ${imageId} does not exist in this region (check ami-id and region)`);
    throw describeAwsError(err, `describing AMI ${imageId}`);
  }
  const img = images[0];
  if (!img) throw new UserError(`AMI ${imageId} does not exist in this region (check ami-id and region)`);
  if (img.State && img.State !== 'available')
    throw new UserError(`AMI ${imageId} is ${img.State}, not available; wait for it or pick another ami-id`);
  return imageOf(img, 'ami-id');
}

export async function resolveImage(client: EC2Client, spec: LaunchTargetSpec): Promise<ResolvedImage> {
  if (spec.amiId) return describeImage(client, spec.amiId);
  if (!spec.amiVersion && !spec.amiNamePattern)
    throw new UserError(
      'no training AMI: set ami-id, or ami-version (or its file ami-version-file), or ami-name-pattern',
    );
  const available: Filter = { Name: 'state', Values: ['available'] };
  const lookups: { filter: Filter; via: string }[] = [];
  if (spec.amiVersion)
    lookups.push({
      filter: { Name: `tag:${AMI_VERSION_TAG}`, Values: [spec.amiVersion] },
      via: `tag ${AMI_VERSION_TAG}=${spec.amiVersion}`,
    });
  if (spec.amiNamePattern) {
    if (spec.amiNamePattern.includes('{version}') && !spec.amiVersion)
      throw new UserError(
        `ami-name-pattern "${spec.amiNamePattern}" uses {version} but no ami-version is set`,
      );
    const name = spec.amiNamePattern.replaceAll('{version}', spec.amiVersion ?? '');
    lookups.push({ filter: { Name: 'name', Values: [name] }, via: `name ${name}` });
  }
  for (const { filter, via } of lookups) {
    let images: Image[];
    try {
      images = await describeImages(client, { Owners: ['self'], Filters: [filter, available] });
    } catch (err) {
      throw describeAwsError(err, `looking up the training AMI by ${via}`);
    }
    const img = newest(images);
    if (img) return imageOf(img, via);
  }
  throw new UserError(
    `no available AMI owned by this account matches ${lookups.map((l) => l.via).join(' or ')}; ` +
      'build it first (build-ami), or set ami-id',
  );
}

export interface ResolvedSubnets {
  subnetIds: string[];
  vpcId?: string;
}

async function describeSubnets(
  client: EC2Client,
  input: ConstructorParameters<typeof DescribeSubnetsCommand>[0],
) {
  const subnets: Subnet[] = [];
  let NextToken: string | undefined;
  do {
    const out = await client.send(new DescribeSubnetsCommand({ ...input, NextToken }));
    subnets.push(...(out.Subnets ?? []));
    NextToken = out.NextToken;
  } while (NextToken);
  return subnets;
}

/** Subnets by id (checked) or by CIDR block, in the order given; all must share one VPC. */
export async function resolveSubnets(
  client: EC2Client,
  spec: Pick<LaunchTargetSpec, 'subnetIds' | 'subnetCidrs'>,
): Promise<ResolvedSubnets> {
  const ids = spec.subnetIds ?? [];
  const cidrs = spec.subnetCidrs ?? [];
  if (ids.length === 0 && cidrs.length === 0) return { subnetIds: [] };
  const ordered: Subnet[] = [];
  if (ids.length > 0) {
    let found: Subnet[];
    try {
      found = await describeSubnets(client, { SubnetIds: ids });
    } catch (err) {
      if (/^InvalidSubnetID\./.test(errorCode(err)))
        throw new UserError(`subnet-id: ${(err as Error).message} (check subnet-id and region)`);
      throw describeAwsError(err, 'describing the subnets');
    }
    for (const id of ids) {
      const s = found.find((x) => x.SubnetId === id);
      if (!s) throw new UserError(`subnet ${id} does not exist in this region (check subnet-id)`);
      ordered.push(s);
    }
  } else {
    let found: Subnet[];
    try {
      found = await describeSubnets(client, { Filters: [{ Name: 'cidr-block', Values: cidrs }] });
    } catch (err) {
      throw describeAwsError(err, 'looking up subnets by CIDR');
    }
    for (const cidr of cidrs) {
      const matches = found.filter((x) => x.CidrBlock === cidr);
      if (matches.length === 0)
        throw new UserError(`no subnet has the CIDR block ${cidr} in this region (check subnet-cidr)`);
      if (matches.length > 1)
        throw new UserError(
          `several subnets have the CIDR block ${cidr} (${matches.map((m) => `${m.SubnetId} in ${m.VpcId}`).join(', ')}); set subnet-id instead`,
        );
      ordered.push(matches[0]);
    }
  }
  const vpcs = [...new Set(ordered.map((s) => s.VpcId))];
  if (vpcs.length > 1)
    throw new UserError(
      `the subnets are in different VPCs (${ordered.map((s) => `${s.SubnetId}: ${s.VpcId}`).join(', ')}); security groups belong to one VPC, so use subnets of one`,
    );
  return { subnetIds: [...new Set(ordered.map((s) => s.SubnetId!))], vpcId: vpcs[0] };
}

async function describeGroups(
  client: EC2Client,
  input: ConstructorParameters<typeof DescribeSecurityGroupsCommand>[0],
): Promise<SecurityGroup[]> {
  const groups: SecurityGroup[] = [];
  let NextToken: string | undefined;
  do {
    const out = await client.send(new DescribeSecurityGroupsCommand({ ...input, NextToken }));
    groups.push(...(out.SecurityGroups ?? []));
    NextToken = out.NextToken;
  } while (NextToken);
  return groups;
}

async function groupsById(client: EC2Client, ids: string[]): Promise<SecurityGroup[]> {
  if (ids.length === 0) return [];
  try {
    return await describeGroups(client, { GroupIds: ids });
  } catch (err) {
    if (/^InvalidGroup/.test(errorCode(err)))
      throw new UserError(
        `security-group-id: ${(err as Error).message} (check security-group-id and region)`,
      );
    throw describeAwsError(err, 'describing the security groups');
  }
}

async function groupsByName(client: EC2Client, names: string[]): Promise<SecurityGroup[]> {
  if (names.length === 0) return [];
  try {
    return await describeGroups(client, { Filters: [{ Name: 'group-name', Values: names }] });
  } catch (err) {
    throw describeAwsError(err, 'looking up security groups by name');
  }
}

/** Picks the named groups in the subnets' VPC (or the only match when no subnet was given). */
function pickByName(groups: SecurityGroup[], names: string[], vpcId: string | undefined): string[] {
  return names.map((name) => {
    const all = groups.filter((g) => g.GroupName === name);
    const inVpc = vpcId ? all.filter((g) => g.VpcId === vpcId) : all;
    if (inVpc.length === 0)
      throw new UserError(
        `no security group named "${name}"${vpcId ? ` in ${vpcId} (the subnet's VPC)` : ''} (check security-group-name)`,
      );
    if (inVpc.length > 1)
      throw new UserError(
        `several security groups are named "${name}" (${inVpc.map((g) => `${g.GroupId} in ${g.VpcId}`).join(', ')}); set subnet-id / subnet-cidr or security-group-id`,
      );
    return inVpc[0].GroupId!;
  });
}

/** AMI, subnets and security groups, looked up in parallel. */
export async function resolveLaunchTargets(
  client: EC2Client,
  spec: LaunchTargetSpec,
): Promise<ResolvedLaunchTargets> {
  const ids = spec.securityGroupIds ?? [];
  const names = ids.length > 0 ? [] : (spec.securityGroupNames ?? []);
  const [image, subnets, byId, byName] = await Promise.all([
    resolveImage(client, spec),
    resolveSubnets(client, spec),
    groupsById(client, ids),
    groupsByName(client, names),
  ]);
  for (const id of ids) {
    const g = byId.find((x) => x.GroupId === id);
    if (!g)
      throw new UserError(`security group ${id} does not exist in this region (check security-group-id)`);
    if (subnets.vpcId && g.VpcId && g.VpcId !== subnets.vpcId)
      throw new UserError(
        `security group ${id} is in ${g.VpcId} but the subnets are in ${subnets.vpcId}; use a group of the subnets' VPC`,
      );
  }
  const securityGroupIds = ids.length > 0 ? ids : pickByName(byName, names, subnets.vpcId);
  return { image, subnetIds: subnets.subnetIds, vpcId: subnets.vpcId, securityGroupIds };
}
