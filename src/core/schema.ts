/**
 * zod's small build (zod/mini) with its English messages, for every schema in core. The full `zod` export
 * is about 450 KB in the bundle and costs some 20 ms of each cold start (the action's steps run without a
 * code cache); zod/mini is tree-shaken to the checks we use and gives the same issues and messages.
 */
import * as z from 'zod/mini';
import { en } from 'zod/locales';

z.config(en());

export { z };
