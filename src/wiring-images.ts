import { Ec2ImageRegistry } from './adapters/aws/ec2-images';
import { resolvePacker } from './adapters/packer/install';
import { PackerImageBuilder } from './adapters/packer/packer-cli';
import type { Options } from './core/options';
import { DEFAULT_PACKER_VERSION } from './core/packer';
import type { ImageBuilder, ImageRegistry, Logger } from './core/ports';

/** The AMI registry and Packer, each built on first use so other commands need neither. */
export function imageDeps(
  options: Options,
  io: { logger: Logger; env: Record<string, string | undefined>; cwd: string },
): { images(): ImageRegistry; imageBuilder(): ImageBuilder } {
  const region = options.string('region') ?? 'us-east-1';
  let images: ImageRegistry | undefined;
  let builder: ImageBuilder | undefined;
  return {
    images: () =>
      (images ??= new Ec2ImageRegistry({ region, endpoint: options.string('ec2-endpoint') || undefined })),
    imageBuilder: () =>
      (builder ??= new PackerImageBuilder({
        binary: () =>
          resolvePacker({
            version: options.string('packer-version') ?? DEFAULT_PACKER_VERSION,
            sha256: options.string('packer-sha256') || undefined,
            pathVar: io.env.PATH,
            logger: io.logger,
          }),
        cwd: io.cwd,
        env: { ...io.env, AWS_REGION: region, AWS_DEFAULT_REGION: region },
        logger: io.logger,
      })),
  };
}
