import * as path from 'node:path';
import {
  decideAmiBuild,
  isLive,
  TAG_AMI_VERSION,
  TAG_BUILT_AT,
  TAG_GIT_SHA,
  TAG_MANAGED,
  TAG_REPO,
} from '../core/ami-lifecycle';
import { PipelineError, UserError, messageOf } from '../core/errors';
import { markdownTable } from '../core/markdown';
import { parseVarAssignments } from '../core/packer';
import type { MachineImage } from '../core/ports';
import { readAmiVersion } from './ami-version';
import { BUILD_AMI_OPTIONS } from './build-ami-options';
import { resolveBaseRef, resolveSha } from './model-context';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';

export { readAmiVersion, type AmiVersionSource } from './ami-version';

function gitPath(file: string): string {
  return path.posix.normalize(file.replace(/\\/g, '/')).replace(/^\.\//, '');
}

/** Did the version file change between base and head? Undefined base: a first commit, where it is new. */
async function versionFileChanged(
  ctx: CommandContext,
  file: string,
  baseRef: string | undefined,
  head: string,
): Promise<boolean> {
  const git = ctx.deps.git;
  if (!baseRef) return (await git.showFile(head, file)) !== undefined;
  const changed = await git.changedFiles(baseRef, head);
  if (changed.includes(gitPath(file))) return true;
  // git diff names paths from the repo root; with a working-directory below it, compare the file itself
  if (changed.some((c) => c.endsWith('/' + gitPath(file)))) {
    return (await git.showFile(baseRef, file)) !== (await git.showFile(head, file));
  }
  return false;
}

function shortRef(ref: string | undefined): string | undefined {
  if (!ref) return undefined;
  return /^[0-9a-f]{40}$/.test(ref) ? ref.slice(0, 7) : ref;
}

async function resolveBaseAmi(ctx: CommandContext): Promise<MachineImage> {
  const images = ctx.deps.images();
  const region = ctx.options.string('region');
  const pinned = ctx.options.string('base-ami');
  if (pinned) {
    const img = await images.describe(pinned);
    if (!img)
      throw new UserError(`base-ami ${pinned} does not exist in ${region} (check base-ami and region)`);
    return img;
  }
  const pattern = ctx.options.require('base-ami-name-pattern');
  const owners = ctx.options.list('base-ami-owner');
  const img = await images.latestByName(pattern, owners);
  if (!img) {
    throw new UserError(
      `no available AMI named "${pattern}" owned by ${owners.join(', ') || 'anyone'} in ${region}; set base-ami-name-pattern / base-ami-owner, or pin base-ami`,
    );
  }
  return img;
}

function templateVariables(
  ctx: CommandContext,
  version: string,
  base: MachineImage,
  imageTags: Record<string, string>,
): Record<string, string> {
  const o = ctx.options;
  const vars: Record<string, string> = {
    ami_version: version,
    base_ami: base.id,
    region: o.string('region'),
    instance_type: o.require('packer-instance-type'),
    // the template puts these in run_tags: the AMI and its snapshots get them in the CreateImage call
    image_tags: JSON.stringify(imageTags),
  };
  if (base.rootDeviceName) vars.root_device_name = base.rootDeviceName;
  if (base.rootVolumeGiB) vars.root_volume_size = String(base.rootVolumeGiB);
  const subnet = o.list('subnet-id')[0];
  if (subnet) vars.subnet_id = subnet;
  const endpoint = o.string('ec2-endpoint');
  if (endpoint) vars.ec2_endpoint = endpoint;
  const cidrs = o.list('packer-ssh-cidr');
  for (const c of cidrs)
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(c) && !/^[0-9a-f:]+\/\d{1,3}$/i.test(c))
      throw new UserError(`packer-ssh-cidr: "${c}" is not a CIDR block like 203.0.113.7/32`);
  if (cidrs.length > 0) vars.ssh_source_cidrs = JSON.stringify(cidrs);
  return { ...vars, ...parseVarAssignments(o.list('packer-vars'), 'packer-vars') };
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const { options, deps } = ctx;
  const log = deps.logger;
  const src = await readAmiVersion(ctx);
  const version = src.version;
  const head = await resolveSha(ctx);
  const baseRef = await resolveBaseRef(ctx);
  const changed = src.from === 'file' ? await versionFileChanged(ctx, src.file, baseRef, head) : false;
  const images = deps.images();
  const existing = (await images.findByTags({ [TAG_MANAGED]: 'true', [TAG_AMI_VERSION]: version })).filter(
    isLive,
  );
  const decision = decideAmiBuild({
    version,
    existing,
    versionFileChanged: changed,
    force: options.bool('force'),
    versionFile: src.from === 'file' ? src.file : 'the ami-version input',
    baseRef: shortRef(baseRef),
  });
  log.info(`build-ami ${version}: ${decision.build ? 'building' : 'not building'}: ${decision.reason}`);
  if (!decision.build) {
    const outputs = {
      'ami-id': decision.existingId ?? '',
      'ami-version': version,
      built: 'false',
      reason: decision.reason,
      'ami-copies': '{}',
    };
    return {
      outputs,
      summary: `### build-ami ${version}: not built\n\n${decision.reason}\n`,
      text: `AMI ${version}: not built: ${decision.reason}`,
    };
  }

  const base = await resolveBaseAmi(ctx);
  log.info(`base AMI ${base.id}${base.name ? ` (${base.name})` : ''}`);
  const templateDir = options.require('packer-template-dir');
  const tags: Record<string, string> = {
    [TAG_MANAGED]: 'true',
    [TAG_AMI_VERSION]: version,
    [TAG_GIT_SHA]: head,
    [TAG_BUILT_AT]: deps.clock.now().toISOString(),
    'model-pipeline:base-ami': base.id,
  };
  if (deps.ci.repository) tags[TAG_REPO] = deps.ci.repository;
  const variables = templateVariables(ctx, version, base, tags);
  const builder = deps.imageBuilder();
  await builder.validate(templateDir, variables);
  const built = await log.group(`packer build ${templateDir} (AMI ${version})`, () =>
    builder.build({ templateDir, variables, signal: ctx.signal }),
  );
  const amiId = built.imageId;
  log.info(`packer built ${amiId}`);

  const copies: Record<string, string> = {};
  try {
    const image = await images.describe(amiId);
    const missing = Object.entries(tags).filter(([k, v]) => image?.tags[k] !== v);
    if (missing.length > 0) {
      // a template or amazon plugin that does not tag in CreateImage (Packer 1.6, plugin < 1.3, no run_tags):
      // tagging now needs ec2:CreateTags on an existing image, which docs/iam-policy.json does not grant
      log.warn(
        `AMI ${amiId} came without ${missing.map(([k]) => k).join(', ')}; tagging it after creation (the CI policy in docs/iam.md refuses this: put image_tags in the template's run_tags and use the amazon plugin >= 1.3.0)`,
      );
      await images.tag(amiId, Object.fromEntries(missing));
    }
    if (image?.encrypted === false)
      log.warn(
        `AMI ${amiId} has unencrypted volumes: check root_device_name (${base.rootDeviceName ?? 'unknown'}) and launch_block_device_mappings in the template`,
      );
    const accounts = options.list('share-accounts');
    if (accounts.length > 0) {
      await images.share(amiId, accounts);
      log.info(`shared ${amiId} with ${accounts.join(', ')}`);
    }
    const region = options.string('region');
    const name = image?.name ?? `model-pipeline-${version}`;
    for (const r of options.list('copy-regions')) {
      if (r === region) continue;
      copies[r] = await images.copyTo(amiId, r, { name, tags });
      log.info(`copied ${amiId} to ${r}: ${copies[r]}`);
    }
  } catch (err) {
    throw new PipelineError(`AMI ${amiId} was built, but finishing it failed: ${messageOf(err)}`);
  }

  const reason = decision.reason;
  const rows = [
    ['ami', amiId],
    ['version', version],
    ['base', base.id],
    ['reason', reason],
  ];
  for (const [r, id] of Object.entries(copies)) rows.push([`copy ${r}`, id]);
  return {
    outputs: {
      'ami-id': amiId,
      'ami-version': version,
      built: 'true',
      reason,
      'ami-copies': JSON.stringify(copies),
    },
    summary: `### build-ami ${version}: built ${amiId}\n\n${markdownTable(['', ''], rows)}\n`,
    text: `AMI ${version}: built ${amiId} (${reason})`,
  };
}

export const buildAmiCommand: CommandDef = {
  name: 'build-ami',
  summary: 'Rebuild the training AMI with Packer when its version changed (or by force), once per version.',
  options: BUILD_AMI_OPTIONS,
  outputs: outputsOf('ami-id', 'ami-version', 'built', 'reason', 'ami-copies'),
  run,
};
