import { randomBytes } from 'node:crypto';
import { constants as fsc, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { valid as semverValid } from 'semver';
import { PipelineError, UserError } from '../core/errors';
import { modelId, modelPrefix } from '../core/identity';
import { MANIFEST_FILE, MODEL_FILE, type Manifest, type ManifestFile } from '../core/manifest';
import { defineOption, defineOptions } from '../core/options';
import { UnsafeArchiveError, unsafeName } from '../core/archive';
import type { ObjectStore } from '../core/ports';
import {
  parseEnvironment,
  registryKeys,
  resolveModelRef,
  type DeploymentRecord,
  type Environment,
  type ModelRef,
} from '../core/registry';
import { ArrivingBytes } from '../core/byte-ranges';
import { DEST_OPTION, fetchVerified } from './download';
import { folderState, MODEL_SOURCES_OPTION, modelOfCommit, resolveSha, singleTarget } from './model-context';
import {
  actorOf,
  ALLOW_FAILED_BENCHMARK_OPTION,
  MODEL_NAME_OPTION,
  putOnce,
  readManifest,
  readPointer,
  configScope,
  sha256File,
  storeRoot,
} from './registry-context';
import { ENVIRONMENT_OPTION, REPO_OPTIONS, STORE_OPTIONS } from './common-options';
import type { CommandContext, CommandDef, CommandResult } from './types';
import { outputsOf } from './output-specs';

const MODEL_VERSION_OPTION = defineOption({
  name: 'model-version',
  description:
    'fetch-model: the exact version wanted (`1.2.1` never matches `1.2.10`). development: the folder of this version at `sha` instead of the config version; staging / production: fail unless the environment runs this version.',
  type: 'string',
  env: ['MODEL_PIPELINE_MODEL_VERSION'],
});

export const OPTIONS = defineOptions([
  // shared options this command reads (help, the orb and the action warnings follow this list)
  ...STORE_OPTIONS,
  ...REPO_OPTIONS,
  ENVIRONMENT_OPTION,
  MODEL_NAME_OPTION,
  DEST_OPTION,
  MODEL_VERSION_OPTION,
  ALLOW_FAILED_BENCHMARK_OPTION,
  MODEL_SOURCES_OPTION,
]);

/** Folder inside the unpacked model where fetch-model keeps what it knows about the fetch. */
export const FETCH_META_DIR = '.model-pipeline';

interface Candidate {
  ref: ModelRef;
  /** Sequence number of the pointer the model came from (staging, production). */
  pointerSeq?: number;
  /** What the promotion that set the pointer overrode. */
  promotionOverride?: string[];
}

function wantedVersion(ctx: CommandContext): string | undefined {
  const v = ctx.options.string('model-version');
  if (!v) return undefined;
  if (semverValid(v) !== v)
    throw new UserError(`model-version "${v}" is not an exact semantic version (x.y.z, e.g. 1.2.1)`);
  return v;
}

async function developmentCandidate(ctx: CommandContext, version: string | undefined): Promise<Candidate> {
  const store = ctx.deps.store();
  const target = await singleTarget(ctx);
  if (version && version !== target.id.version) {
    // another version than the config's: that version's own folder at sha, by its exact name
    // (with its trailing '/': 1.2.1-abc1234/ is never satisfied by 1.2.10-abc1234/)
    const prefix = modelPrefix(storeRoot(ctx), modelId(version, await resolveSha(ctx)), target.modelName);
    const ref = resolveModelRef(prefix, '', '');
    const state = await folderState(store, ref.folder);
    if (!state.complete)
      throw new PipelineError(
        `no model for development: ${store.uri(ref.folder)} ${state.partial ? 'is incomplete (no manifest.json or model.zip: its training did not finish)' : 'does not exist'}. Train this commit's model first.`,
      );
    return { ref };
  }
  // the one resolution rule: the folder that is the model of this commit (a merge reuses the branch's model)
  const { folder } = await modelOfCommit(ctx, target).catch((err: unknown) => {
    throw err instanceof PipelineError ? new PipelineError(`no model for development: ${err.message}`) : err;
  });
  return { ref: resolveModelRef(folder, '', '') };
}

async function pointedCandidate(
  ctx: CommandContext,
  env: Environment,
  version: string | undefined,
): Promise<Candidate> {
  const store = ctx.deps.store();
  const scope = await configScope(ctx);
  const { pointer } = await readPointer(store, scope, env);
  if (!pointer)
    throw new PipelineError(
      `no model for ${env}: nothing was promoted to ${env} (no ${store.uri(registryKeys.pointer(scope, env))}). Promote a model first.`,
    );
  const ref = resolveModelRef(pointer.prefix, '', '');
  if (version !== undefined && ref.id.version !== version)
    throw new PipelineError(
      `no model for ${env} at version ${version}: ${env} runs ${ref.folder} (version ${ref.id.version}). Promote ${version} to ${env} first, or drop model-version.`,
    );
  return { ref, pointerSeq: pointer.seq, promotionOverride: pointer.record.override };
}

/** A failed benchmark stops the fetch unless allowed here or already overridden by the promotion. */
function benchmarkOverride(
  ctx: CommandContext,
  env: Environment,
  c: Candidate,
  manifest: Manifest,
): string | undefined {
  if (manifest.benchmark?.passed !== false) return undefined;
  const promoted = c.promotionOverride?.find((o) => o.startsWith('benchmark:'));
  if (promoted) return `promotion override: ${promoted}`;
  if (ctx.options.bool('allow-failed-benchmark'))
    return `benchmark: ${c.ref.folder} failed its benchmark; fetched with allow-failed-benchmark`;
  throw new PipelineError(
    `no model passed validation for ${env}: ${c.ref.folder} failed its benchmark (manifest benchmark.passed=false` +
      `${manifest.benchmark.file ? `, see ${manifest.benchmark.file}` : ''}). Train a model that passes, or set allow-failed-benchmark.`,
  );
}

/** What dest may be: absent, an empty folder, or a folder an earlier fetch-model wrote (replaced whole). */
async function checkDest(dest: string): Promise<'absent' | 'empty' | 'previous'> {
  let names: string[];
  try {
    names = await fs.readdir(dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'absent';
    if (code === 'ENOTDIR') throw new UserError(`dest ${dest} is a file, not a folder`);
    throw new UserError(`cannot read dest ${dest}: ${(err as Error).message}`);
  }
  if (names.length === 0) return 'empty';
  const previous = await fs
    .access(path.join(dest, FETCH_META_DIR, MANIFEST_FILE))
    .then(() => true)
    .catch(() => false);
  if (previous) return 'previous';
  throw new UserError(
    `dest ${dest} is not empty and was not written by fetch-model; choose an empty or new folder`,
  );
}

/** Creates a new file (never through an existing name or link) readable by all, like the unpacked ones. */
async function writeNew(file: string, data: string | Buffer): Promise<void> {
  const h = await fs.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | (fsc.O_NOFOLLOW ?? 0), 0o644);
  try {
    await h.writeFile(data);
    await h.chmod(0o644);
  } finally {
    await h.close();
  }
}

function modelEntry(store: ObjectStore, ref: ModelRef, manifest: Manifest): ManifestFile {
  const f = manifest.files.find((x) => x.name === MODEL_FILE);
  if (!f) throw new PipelineError(`${store.uri(ref.folder + MANIFEST_FILE)} lists no ${MODEL_FILE}`);
  return f;
}

async function recordDeployment(
  store: ObjectStore,
  ref: ModelRef,
  record: DeploymentRecord,
): Promise<string> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const key = registryKeys.deployment(
      ref.scope,
      record.environment,
      new Date(record.at),
      randomBytes(4).toString('hex'),
    );
    if (await putOnce(store, key, JSON.stringify(record, null, 2))) return key;
  }
  throw new PipelineError(`could not create a deployment record under ${store.uri(ref.scope)}`);
}

async function run(ctx: CommandContext): Promise<CommandResult> {
  const env = parseEnvironment(ctx.options.string('environment'));
  const version = wantedVersion(ctx);
  const store = ctx.deps.store();
  const log = ctx.deps.logger;
  const candidate =
    env === 'development'
      ? await developmentCandidate(ctx, version)
      : await pointedCandidate(ctx, env, version);
  const { ref } = candidate;
  const manifest = await readManifest(store, ref);
  const override = benchmarkOverride(ctx, env, candidate, manifest);
  if (override) log.warn(`fetching ${ref.folder} although its benchmark failed (${override})`);
  const model = modelEntry(store, ref, manifest);
  const configName = manifest.config ? path.posix.basename(manifest.config.path) : undefined;
  const config = configName ? manifest.files.find((f) => f.name === configName) : undefined;
  if (config && unsafeName(config.name))
    throw new PipelineError(
      `${store.uri(ref.folder + MANIFEST_FILE)} names its config ${JSON.stringify(config.name)}: ${unsafeName(config.name)}`,
    );
  if (!config) log.warn(`${ref.folder} holds no config file in its manifest: only ${MODEL_FILE} is fetched`);

  const dest = path.resolve(ctx.deps.cwd, ctx.options.string('dest') || ref.id.name);
  await checkDest(dest);
  const parent = path.dirname(dest);
  await fs.mkdir(parent, { recursive: true });
  // next to dest, so the final rename stays on one filesystem
  const work = await fs.mkdtemp(path.join(parent, `.${path.basename(dest)}.fetch-`));
  try {
    const zip = path.join(work, MODEL_FILE);
    const meta = path.join(work, 'meta');
    await fs.mkdir(meta);
    const unpacked = path.join(work, 'unpacked');
    await fs.mkdir(unpacked, { mode: 0o755 });
    await fs.chmod(unpacked, 0o755);
    // download, hash and unpack overlap: the store hashes each stretch as it is written and the archive
    // is unpacked (into the work folder) as its bytes arrive; dest gets it only once the sha256 matched
    const modelKey = ref.folder + MODEL_FILE;
    const arriving = new ArrivingBytes();
    const download = (async () => {
      let got: { size: number; sha256?: string };
      try {
        got = await store.downloadFile(modelKey, zip, {
          sha256: true,
          onWritten: (start, end) => arriving.add(start, end),
        });
      } catch (err) {
        throw new PipelineError(`cannot download ${store.uri(modelKey)}: ${(err as Error).message}`);
      }
      // a store that does not say what it wrote as it goes has written it all now
      arriving.add(0, got.size);
      const sha = got.sha256 ?? (await sha256File(zip));
      if (got.size !== model.size || sha !== model.sha256)
        throw new PipelineError(
          `${store.uri(modelKey)} does not match its manifest (${got.size} bytes sha256:${sha.slice(0, 12)}…, expected ` +
            `${model.size} bytes sha256:${model.sha256.slice(0, 12)}…); the download was removed and nothing was written to ${dest}`,
        );
    })().finally(() => arriving.close());
    const stopUnpacking = new AbortController();
    const extraction = ctx.deps.archives.extract(zip, unpacked, {
      limits: { reserved: [FETCH_META_DIR] },
      signal: AbortSignal.any([ctx.signal, stopUnpacking.signal]),
      arriving: { size: model.size, ready: (start, end) => arriving.ready(start, end) },
    });
    const configFetch = config
      ? fetchVerified(store, ref.folder + config.name, path.join(meta, config.name), config)
      : Promise.resolve();
    // a failed download or hash stops the unpacking; an archive refused keeps the download going, so a
    // corrupt download is reported as what it is
    download.catch(() => stopUnpacking.abort());
    const [downloaded, extracted, configured] = await Promise.allSettled([download, extraction, configFetch]);
    if (downloaded.status === 'rejected') throw downloaded.reason;
    if (configured.status === 'rejected') throw configured.reason;
    log.info(`downloaded ${ref.folder}${MODEL_FILE}: sha256 matches the manifest`);
    if (extracted.status === 'rejected') {
      const err: unknown = extracted.reason;
      if (!(err instanceof UnsafeArchiveError)) throw err;
      throw new PipelineError(
        `${store.uri(modelKey)} is not safe to unpack, nothing was written to ${dest}: ${err.message}`,
      );
    }
    const entries = extracted.value;
    if (entries.length === 0) throw new PipelineError(`${store.uri(ref.folder + MODEL_FILE)} holds no files`);

    // only names created here, each new: nothing is written through a name the archive made
    const metaDir = path.join(unpacked, FETCH_META_DIR);
    await fs.mkdir(metaDir, { mode: 0o755 });
    await writeNew(path.join(metaDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    if (config) {
      const text = await fs.readFile(path.join(meta, config.name));
      await writeNew(path.join(metaDir, config.name), text);
      if (entries.some((e) => e.path === config.name))
        log.warn(`${MODEL_FILE} holds its own ${config.name}; the stored config is in ${FETCH_META_DIR}/`);
      else await writeNew(path.join(unpacked, config.name), text);
    }
    // checked again: another process may have written into dest while we downloaded
    const state = await checkDest(dest);
    if (state === 'previous') await fs.rm(dest, { recursive: true, force: true });
    else if (state === 'empty') await fs.rmdir(dest);
    await fs.rename(unpacked, dest);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }

  // only now: a fetch that failed verification or unpacking never marks the model as deployed
  const record: DeploymentRecord = {
    schemaVersion: 1,
    environment: env,
    prefix: ref.folder,
    version: ref.id.version,
    modelSha256: model.sha256,
    ...(candidate.pointerSeq !== undefined ? { pointerSeq: candidate.pointerSeq } : {}),
    at: ctx.deps.clock.now().toISOString(),
    actor: actorOf(ctx),
    ...(ctx.deps.ci.runUrl ? { runUrl: ctx.deps.ci.runUrl } : {}),
    ...(ctx.deps.ci.sha ? { gitSha: ctx.deps.ci.sha } : {}),
    ...(override ? { override: [override] } : {}),
  };
  let recordKey: string;
  try {
    recordKey = await recordDeployment(store, ref, record);
  } catch (err) {
    throw new PipelineError(
      `${ref.folder} is unpacked in ${dest}, but the deployment could not be recorded: ${(err as Error).message}`,
    );
  }
  const uri = store.uri(ref.folder);
  return {
    outputs: {
      'model-prefix': ref.folder,
      'model-dir': dest,
      'model-version': ref.id.version,
      'model-uri': uri,
      'deployment-record': store.uri(recordKey),
    },
    summary:
      `### fetch-model: ${env}\n\n| | |\n| --- | --- |\n| model | \`${uri}\` |\n| version | ${ref.id.version} |\n` +
      `| unpacked to | \`${dest}\` |\n| sha256 | ${model.sha256.slice(0, 12)}… (verified) |\n` +
      `| record | \`${store.uri(recordKey)}\` |\n` +
      (override ? `| override | ${override} |\n` : ''),
    text: `fetched ${ref.folder} (${env}, version ${ref.id.version}) into ${dest}: sha256 verified, deployment recorded`,
  };
}

export const fetchModelCommand: CommandDef = {
  name: 'fetch-model',
  summary:
    'Fetch the model an environment should run (development: this commit; staging/production: the pointer), verify and unpack it, and record the deployment.',
  options: OPTIONS,
  outputs: outputsOf('model-prefix', 'model-dir', 'model-version', 'model-uri', 'deployment-record'),
  run,
};
