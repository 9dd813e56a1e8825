import {
  CopyImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  EC2Client,
  ModifyImageAttributeCommand,
  type DescribeImagesCommandInput,
  type EC2ClientConfig,
  type Image,
} from '@aws-sdk/client-ec2';
import { PipelineError } from '../../core/errors';
import type { ImageRegistry, MachineImage } from '../../core/ports';
import { bindAbortSignal, boundedClientConfig } from './client-config';
import { describeAwsError } from './errors';

export interface Ec2ImagesOptions {
  region: string;
  endpoint?: string;
  /** The command's abort signal: every call but cleanup ends when it fires. */
  signal?: AbortSignal;
}

export function ec2ClientConfig(o: Ec2ImagesOptions): EC2ClientConfig {
  return { ...boundedClientConfig(), region: o.region, endpoint: o.endpoint };
}

function errorCode(err: unknown): string {
  const e = err as { name?: string; Code?: string };
  return e?.Code ?? e?.name ?? '';
}

function ebsEncrypted(img: Image): boolean | undefined {
  const flags = (img.BlockDeviceMappings ?? []).filter((m) => m.Ebs).map((m) => m.Ebs!.Encrypted);
  if (flags.length === 0 || flags.some((f) => f === undefined)) return undefined;
  return flags.every(Boolean);
}

export function toMachineImage(img: Image): MachineImage {
  const tags: Record<string, string> = {};
  for (const t of img.Tags ?? []) if (t.Key) tags[t.Key] = t.Value ?? '';
  const created = img.CreationDate ? new Date(img.CreationDate) : undefined;
  return {
    id: img.ImageId!,
    name: img.Name,
    state: img.State,
    createdAt: created && !Number.isNaN(created.getTime()) ? created : undefined,
    ownerId: img.OwnerId,
    tags,
    snapshotIds: (img.BlockDeviceMappings ?? [])
      .map((m) => m.Ebs?.SnapshotId)
      .filter((s): s is string => Boolean(s)),
    rootDeviceName: img.RootDeviceName,
    rootVolumeGiB: (img.BlockDeviceMappings ?? []).find((m) => m.DeviceName === img.RootDeviceName)?.Ebs
      ?.VolumeSize,
    encrypted: ebsEncrypted(img),
  };
}

/** AMIs of one region through the EC2 API (or an EC2-compatible endpoint). */
export class Ec2ImageRegistry implements ImageRegistry {
  readonly client: EC2Client;

  constructor(
    private readonly o: Ec2ImagesOptions,
    client?: EC2Client,
  ) {
    this.client = client ?? bindAbortSignal(new EC2Client(ec2ClientConfig(o)), o.signal);
  }

  private async describe_(input: DescribeImagesCommandInput, what: string): Promise<Image[]> {
    const images: Image[] = [];
    let NextToken: string | undefined;
    try {
      do {
        const out = await this.client.send(new DescribeImagesCommand({ ...input, NextToken }));
        images.push(...(out.Images ?? []));
        NextToken = out.NextToken;
      } while (NextToken);
    } catch (err) {
      throw describeAwsError(err, what);
    }
    return images;
  }

  async findByTags(tags: Record<string, string>): Promise<MachineImage[]> {
    const Filters = Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
    const images = await this.describe_(
      { Owners: ['self'], Filters },
      `listing AMIs tagged ${JSON.stringify(tags)} in ${this.o.region}`,
    );
    return images.map(toMachineImage).filter((i) => i.state !== 'deregistered');
  }

  async latestByName(namePattern: string, owners: string[]): Promise<MachineImage | undefined> {
    const images = await this.describe_(
      {
        Owners: owners.length > 0 ? owners : undefined,
        Filters: [
          { Name: 'name', Values: [namePattern] },
          { Name: 'state', Values: ['available'] },
        ],
      },
      `finding the base AMI "${namePattern}" (owners ${owners.join(', ') || 'any'}) in ${this.o.region}`,
    );
    const sorted = images
      .map(toMachineImage)
      .sort(
        (a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0) || b.id.localeCompare(a.id),
      );
    return sorted[0];
  }

  async describe(id: string): Promise<MachineImage | undefined> {
    try {
      const out = await this.client.send(new DescribeImagesCommand({ ImageIds: [id] }));
      const img = out.Images?.[0];
      return img ? toMachineImage(img) : undefined;
    } catch (err) {
      if (/^InvalidAMIID\./.test(errorCode(err))) return undefined;
      throw describeAwsError(err, `describing AMI ${id}`);
    }
  }

  async tag(id: string, tags: Record<string, string>): Promise<void> {
    const image = await this.describe(id);
    const Resources = [id, ...(image?.snapshotIds ?? [])];
    try {
      await this.client.send(
        new CreateTagsCommand({
          Resources,
          Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
        }),
      );
    } catch (err) {
      throw describeAwsError(err, `tagging AMI ${id}`);
    }
  }

  async share(id: string, accountIds: string[]): Promise<void> {
    if (accountIds.length === 0) return;
    try {
      await this.client.send(
        new ModifyImageAttributeCommand({
          ImageId: id,
          LaunchPermission: { Add: accountIds.map((UserId) => ({ UserId })) },
        }),
      );
    } catch (err) {
      throw describeAwsError(err, `sharing AMI ${id} with ${accountIds.join(', ')}`);
    }
  }

  async copyTo(
    id: string,
    region: string,
    request: { name: string; tags: Record<string, string> },
  ): Promise<string> {
    const target = new Ec2ImageRegistry({ region, endpoint: this.o.endpoint, signal: this.o.signal });
    try {
      let newId: string | undefined;
      try {
        // tagged while created (ec2:CreateAction = CopyImage): the IAM policy allows no other way for a copy
        const Tags = Object.entries(request.tags).map(([Key, Value]) => ({ Key, Value }));
        const out = await target.client.send(
          new CopyImageCommand({
            SourceImageId: id,
            SourceRegion: this.o.region,
            Name: request.name,
            TagSpecifications: [
              { ResourceType: 'image', Tags },
              { ResourceType: 'snapshot', Tags },
            ],
          }),
        );
        newId = out.ImageId;
      } catch (err) {
        throw describeAwsError(err, `copying AMI ${id} to ${region}`);
      }
      if (!newId) throw new PipelineError(`copying AMI ${id} to ${region}: EC2 returned no image id`);
      // an EC2-compatible endpoint that ignored the tag specification: tag it now (the copy has no marker yet)
      const got = (await target.describe(newId))?.tags ?? {};
      if (Object.entries(request.tags).some(([k, v]) => got[k] !== v)) await target.tag(newId, request.tags);
      return newId;
    } finally {
      target.client.destroy();
    }
  }

  async deregister(image: MachineImage): Promise<{ deletedSnapshots: string[] }> {
    try {
      await this.client.send(new DeregisterImageCommand({ ImageId: image.id }));
    } catch (err) {
      if (!/^InvalidAMIID\./.test(errorCode(err)))
        throw describeAwsError(err, `deregistering AMI ${image.id}`);
    }
    const deletedSnapshots: string[] = [];
    for (const snap of image.snapshotIds) {
      try {
        await this.client.send(new DeleteSnapshotCommand({ SnapshotId: snap }));
        deletedSnapshots.push(snap);
      } catch (err) {
        if (errorCode(err) === 'InvalidSnapshot.NotFound') continue;
        throw describeAwsError(err, `deleting snapshot ${snap} of deregistered AMI ${image.id}`);
      }
    }
    return { deletedSnapshots };
  }
}
