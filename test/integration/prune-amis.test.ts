import {
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  RegisterImageCommand,
} from '@aws-sdk/client-ec2';
import { MemoryState } from '../../src/adapters/system/console-logger';
import { UserError } from '../../src/core/errors';
import { runCommand } from '../../src/runner';
import { motoEndpoint } from '../helpers/aws';
import { TempRepo } from '../helpers/git-repo';
import { MemoryLogger } from '../helpers/memory-logger';

// a region of its own: prune-amis acts on every managed AMI of the account in its region
const REGION = 'eu-west-3';

const ec2 = (): EC2Client => new EC2Client({ region: REGION, endpoint: motoEndpoint() });

async function registerAmi(
  name: string,
  tags: Record<string, string>,
): Promise<{ id: string; snapshot: string }> {
  const client = ec2();
  const { ImageId } = await client.send(
    new RegisterImageCommand({ Name: name, RootDeviceName: '/dev/sda1' }),
  );
  if (Object.keys(tags).length > 0) {
    await client.send(
      new CreateTagsCommand({
        Resources: [ImageId!],
        Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
      }),
    );
  }
  const [img] = (await client.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images!;
  return { id: ImageId!, snapshot: img.BlockDeviceMappings![0].Ebs!.SnapshotId! };
}

async function imageExists(id: string): Promise<boolean> {
  try {
    const out = await ec2().send(new DescribeImagesCommand({ ImageIds: [id] }));
    return (out.Images ?? []).some((i) => i.State !== 'deregistered');
  } catch {
    return false;
  }
}

async function snapshotExists(id: string): Promise<boolean> {
  try {
    const out = await ec2().send(new DescribeSnapshotsCommand({ SnapshotIds: [id] }));
    return (out.Snapshots ?? []).length > 0;
  } catch {
    return false;
  }
}

const managed = (v: string): Record<string, string> => ({
  'model-pipeline': 'true',
  'model-pipeline:ami-version': v,
});

describe('prune-amis against moto', () => {
  let repo: TempRepo;
  const ami: Record<string, { id: string; snapshot: string }> = {};

  beforeAll(async () => {
    repo = new TempRepo('mp-prune-');
    repo.write('.packer/ami-version.txt', '1.3.0\n').commit('v');
    for (const v of ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '2.0.0'])
      ami[v] = await registerAmi(`mp-${v}`, managed(v));
    ami.foreign = await registerAmi('someone-elses', { 'model-pipeline:ami-version': '0.1.0' });
    ami.untagged = await registerAmi('untagged', {});
  });

  function prune(inputs: Record<string, string>, logger = new MemoryLogger()) {
    return runCommand({
      command: 'prune-amis',
      inputs: { region: REGION, 'ec2-endpoint': motoEndpoint(), ...inputs },
      env: { ...process.env, MODEL_PIPELINE_AMI_VERSION: undefined, MODEL_PIPELINE_DRY_RUN: undefined },
      cwd: repo.dir,
      logger,
      state: new MemoryState(),
      signal: new AbortController().signal,
    });
  }

  test('dry run by default: prints the plan, deletes nothing', async () => {
    const r = await prune({ keep: '1' });
    expect(r.outputs['dry-run']).toBe('true');
    expect(JSON.parse(r.outputs['pruned-ami-ids'])).toEqual([ami['1.1.0'].id, ami['1.0.0'].id]);
    const kept = JSON.parse(r.outputs['kept-ami-ids']) as string[];
    expect(kept).toEqual(expect.arrayContaining([ami['2.0.0'].id, ami['1.3.0'].id, ami['1.2.0'].id]));
    expect(kept).not.toContain(ami.foreign.id);
    expect(r.text).toMatch(/would deregister/);
    expect(r.text).toMatch(/to delete, run again with dry-run: false/);
    for (const a of Object.values(ami)) expect(await imageExists(a.id)).toBe(true);
  });

  test('dry-run false: deregisters the old ones with their snapshots, never the others', async () => {
    const r = await prune({ keep: '1', 'dry-run': 'false' });
    expect(r.outputs['dry-run']).toBe('false');
    expect(JSON.parse(r.outputs['pruned-ami-ids'])).toEqual([ami['1.1.0'].id, ami['1.0.0'].id]);
    expect((JSON.parse(r.outputs['deleted-snapshot-ids']) as string[]).sort()).toEqual(
      [ami['1.1.0'].snapshot, ami['1.0.0'].snapshot].sort(),
    );
    for (const v of ['1.0.0', '1.1.0']) {
      expect(await imageExists(ami[v].id)).toBe(false);
      expect(await snapshotExists(ami[v].snapshot)).toBe(false);
    }
    for (const k of ['1.2.0', '1.3.0', '2.0.0', 'foreign', 'untagged']) {
      expect(await imageExists(ami[k].id)).toBe(true);
      expect(await snapshotExists(ami[k].snapshot)).toBe(true);
    }
    // a second run has nothing left to do
    const again = await prune({ keep: '1', 'dry-run': 'false' });
    expect(JSON.parse(again.outputs['pruned-ami-ids'])).toEqual([]);
  });

  test('the ami-version input overrides the file; keep 0 keeps only current and newer', async () => {
    const r = await prune({ 'ami-version': '2.0.0', keep: '0' });
    expect(JSON.parse(r.outputs['pruned-ami-ids'])).toEqual([ami['1.3.0'].id, ami['1.2.0'].id]);
  });

  test('a negative keep is a UserError', async () => {
    await expect(prune({ keep: '-1' })).rejects.toThrow(UserError);
  });
});
