import { version } from '../package.json';

/** The package version, bundled in so `--version` and manifests name the release that ran. */
export const VERSION: string = version;
