import type { PipelineOptions } from './commands/option-table';
import type { ImageBuilder, ImageRegistry, Logger } from './core/ports';

/* eslint-disable @typescript-eslint/no-require-imports */
// loaded on first use: only build-ami and prune-amis pay for the EC2 client and the tool cache
const imagesModule = (): typeof import('./adapters/aws/ec2-images') => require('./adapters/aws/ec2-images');
const installModule = (): typeof import('./adapters/packer/install') => require('./adapters/packer/install');
const packerModule = (): typeof import('./adapters/packer/packer-cli') =>
  require('./adapters/packer/packer-cli');
/* eslint-enable @typescript-eslint/no-require-imports */

/** The AMI registry and Packer, each built on first use so other commands need neither. */
export function imageDeps(
  options: PipelineOptions,
  io: { logger: Logger; env: Record<string, string | undefined>; cwd: string; signal?: AbortSignal },
): { images(): ImageRegistry; imageBuilder(): ImageBuilder } {
  const region = options.string('region');
  let images: ImageRegistry | undefined;
  let builder: ImageBuilder | undefined;
  return {
    images: () =>
      (images ??= new (imagesModule().Ec2ImageRegistry)({
        region,
        endpoint: options.string('ec2-endpoint') || undefined,
        signal: io.signal,
      })),
    imageBuilder: () =>
      (builder ??= new (packerModule().PackerImageBuilder)({
        binary: () =>
          installModule().resolvePacker({
            version: options.string('packer-version'),
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
