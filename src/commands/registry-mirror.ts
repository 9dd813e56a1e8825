import { messageOf, UserError } from '../core/errors';
import { MODEL_FILE } from '../core/manifest';
import type { Environment, ModelRef } from '../core/registry';
import {
  buildModelPackageRequest,
  checkEcrImage,
  modelPackageDescription,
  sagemakerName,
} from '../core/sagemaker';
import { backendOf } from '../wiring';
import { createSageMaker } from '../wiring-sagemaker';
import { readManifest, storeRoot } from './registry-context';
import type { CommandContext } from './types';

/** The group a model's versions are mirrored in: model-package-group, else the model's name. */
function groupOf(ctx: CommandContext, ref: ModelRef): string {
  const given = ctx.options.string('model-package-group')?.trim();
  if (given) return given;
  const name = ctx.options.string('model-name')?.trim();
  if (name) return name;
  // the scope below the store prefix: `ranker/` for a named model, nothing for a repository's one model
  const root = storeRoot(ctx);
  const scope = root && ref.scope.startsWith(root + '/') ? ref.scope.slice(root.length + 1) : ref.scope;
  return scope.split('/').filter(Boolean).join('-') || 'model';
}

/**
 * promote's registry mirror, when sagemaker-registry asks for it: checked before anything moves (bad input
 * costs one line and exit 2), run after the pointer moved. Its failure is a warning: the promotion in the
 * store, the source of truth, stands and promote exits 0.
 */
export function registryMirror(
  ctx: CommandContext,
): ((ref: ModelRef, env: Environment) => Promise<string>) | undefined {
  if (!ctx.options.bool('sagemaker-registry')) return undefined;
  if (backendOf(ctx.options) === 'local')
    throw new UserError(
      'sagemaker-registry mirrors promotions into SageMaker: it needs the aws backend (a bucket)',
    );
  const image = ctx.options.string('serving-image')?.trim() || undefined;
  if (image) checkEcrImage(image, 'serving-image');
  return mirrorInto(ctx, image);
}

/**
 * demote's registry mirror: the restored model's package is mirrored as promote does, and the package of
 * the model rolled back is marked `demoted-from` (Rejected when it left production). Like promote's, its
 * failure is a warning: the rollback in the store stands.
 */
export function registryDemotion(
  ctx: CommandContext,
): ((rolledBack: ModelRef, restored: ModelRef, env: Environment) => Promise<string[]>) | undefined {
  const mirror = registryMirror(ctx);
  if (!mirror) return undefined;
  return async (rolledBack, restored, env) => {
    const lines = [await mirror(restored, env)];
    const group = groupOf(ctx, rolledBack);
    try {
      const r = await createSageMaker(ctx).demoteModelPackage(
        sagemakerName([group]),
        modelPackageDescription(rolledBack.folder),
        env,
      );
      lines.push(
        r.arn
          ? `SageMaker model package ${r.action}: ${r.arn} (rolled back out of ${env}${env === 'production' ? ', Rejected' : ''})`
          : `no SageMaker model package of ${rolledBack.folder} in group ${group}: nothing to mark`,
      );
      ctx.deps.logger.info(lines[1]);
    } catch (err) {
      lines.push(
        `the rollback stands, but marking ${rolledBack.folder} in the SageMaker model package group ${group} failed: ${messageOf(err)}`,
      );
      ctx.deps.logger.warn(lines[1]);
    }
    return lines;
  };
}

function mirrorInto(
  ctx: CommandContext,
  image: string | undefined,
): (ref: ModelRef, env: Environment) => Promise<string> {
  return async (ref, env) => {
    const log = ctx.deps.logger;
    const group = groupOf(ctx, ref);
    try {
      const store = ctx.deps.store();
      const manifest = await readManifest(store, ref);
      const req = buildModelPackageRequest({
        group,
        image,
        modelUri: store.uri(ref.folder),
        environment: env,
        version: manifest.model.version,
        prefix: ref.folder,
        modelSha256: manifest.files.find((f) => f.name === MODEL_FILE)?.sha256 ?? '',
      });
      const r = await createSageMaker(ctx).mirrorModelPackage(req);
      const line = `SageMaker model package ${r.action}: ${r.arn} (group ${req.ModelPackageGroupName}, ${env}, ${req.ModelApprovalStatus})`;
      log.info(line);
      return line;
    } catch (err) {
      const line = `the promotion stands, but mirroring it into the SageMaker model package group ${group} failed: ${messageOf(err)}`;
      log.warn(line);
      return line;
    }
  };
}
