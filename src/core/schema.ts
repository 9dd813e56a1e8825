/**
 * zod's small build (zod/mini) with its English messages, for every schema in core (`import * as z from
 * './schema'`). The full `zod` export is about 450 KB in the bundle, and compiling the bundle is most of a
 * cold start (the action's steps run without a code cache); zod/mini is tree-shaken to the checks we use and
 * gives the same issues and messages.
 */
import { config } from 'zod/mini';
import { en } from 'zod/locales';

config(en());

export * from 'zod/mini';
